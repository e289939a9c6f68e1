// google.api.http -> Connect: see README.md in this folder.
export { createTranscoder } from "./transcoder.js";
export type { Transcoder, TranscoderOptions, TranscoderService } from "./transcoder.js";
export { compileServiceRoutes, BindingError } from "./binding.js";
export type { Route, RouteMount, SuccessStatus, BodyRule, ResponseRule, PathBinding } from "./binding.js";
export { parsePathTemplate, TemplateError } from "./path-template.js";
export type { PathTemplate, TemplateSegment, TemplateVariable } from "./path-template.js";
export { RouteTable, DuplicateRouteError } from "./route-table.js";
export { httpStatusByCode } from "./status.js";
