// The server's fixed limits that configuration values are held to.

/**
 * Largest request header block, in bytes: an HTTP/1.1 request's header section (Node's
 * maxHeaderSize, the request line included) and an HTTP/2 request's header list
 * (SETTINGS_MAX_HEADER_LIST_SIZE) alike; beyond, 431 (HTTP/2: the stream reset).
 */
export const requestHeaderLimitBytes = 16 * 1024;

/**
 * What a credential sent in a header may take of that block: the rest is left to the request
 * line (or HTTP/2's pseudo-headers), Host and the call's other headers.
 */
export const headerCredentialLimitBytes = requestHeaderLimitBytes - 1024;
