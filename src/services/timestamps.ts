// google.protobuf.Timestamp (nanoseconds) to the Dates Tessera keeps times in (milliseconds).
// protobuf-es's timestampDate rounds the nanoseconds to the nearest ms, so 59.999999999 s becomes
// the next second: a login's expirationTime would end its token after the time asked for, and
// the last ms of year 9999 would pass it. Here the direction is chosen: an expiry is cut down to
// its ms, never later than asked; a bound compared with times kept in whole ms (an audit query's
// since, at or after, and until, before) is taken up to the first whole ms at or after it, which
// keeps exactly the times the bound keeps.
import type { Timestamp } from "@bufbuild/protobuf/wkt";

/** The Date of `t` cut down to the ms (never later than `t`). */
export function timestampDateDown(t: Timestamp): Date {
  return new Date(Number(t.seconds) * 1000 + Math.floor(t.nanos / 1_000_000));
}

/** The first whole ms at or after `t`. */
export function timestampDateUp(t: Timestamp): Date {
  return new Date(Number(t.seconds) * 1000 + Math.ceil(t.nanos / 1_000_000));
}
