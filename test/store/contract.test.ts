// Runs the store contract against every adapter: SQLite always; MongoDB when MONGODB_URI is set
// (storesUnderTest: with CI=true a missing MONGODB_URI is a failure, not a skip).
import { freshStores, storeHarness } from "../support/store.js";
import { storesUnderTest } from "../support/server.js";
import { storeContract } from "./contract.js";

for (const kind of storesUnderTest()) {
  describe(`store contract: ${kind}`, () => {
    const stores = freshStores(kind);
    storeContract(async () => storeHarness(kind), async () => stores.harness());
  });
}
