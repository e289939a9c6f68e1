// A proto service together with its implementation, typed end to end: `bind` checks the
// implementation against the service's generated descriptor, and the server only ever asks a
// binding to register itself, so no cast erases the types on the way.
import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";

export interface ServiceBinding {
  readonly service: DescService;
  /** Registers the implementation on a Connect router. */
  register(router: ConnectRouter): void;
}

export function bind<S extends DescService>(service: S, impl: ServiceImpl<S>): ServiceBinding {
  return { service, register: (router) => router.service(service, impl) };
}
