// Tessera's services. Their messages are in the generated modules, by API:
// "@tessera/client/gen/tessera/<api>/v1/<file>_pb.js".
export { SessionService, UserService } from "../gen/tessera/session/v1/session_pb.js";
export { ApiTokenService } from "../gen/tessera/apitoken/v1/api_token_pb.js";
export { UserTokenService } from "../gen/tessera/usertoken/v1/user_token_pb.js";
export { AuthenticationTokenService } from "../gen/tessera/authtoken/v1/authentication_token_pb.js";
export { JwtService } from "../gen/tessera/jwt/v1/jwt_pb.js";
export { KeyService } from "../gen/tessera/key/v1/key_pb.js";
export { AuditService } from "../gen/tessera/audit/v1/audit_pb.js";
