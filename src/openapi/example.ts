// Where the `buf curl` examples of the OpenAPI document (document.ts, at generation time) and of
// the /docs page (server/docs.ts) send their calls: a module of its own, so that the server,
// which serves the generated document, evaluates none of the generator as it starts.

/** Where the `buf curl` examples send their calls. */
export const exampleBaseUrl = "http://localhost:8080";
