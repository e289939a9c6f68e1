// Dates are stored as integer milliseconds since the epoch (UTC); booleans as 0/1.

export function toMs(date: Date): number {
  return date.getTime();
}

export function toMsOrNull(date: Date | undefined): number | null {
  return date === undefined ? null : date.getTime();
}

export function fromMs(ms: number): Date {
  return new Date(ms);
}

/** Copies `value` onto `target[key]` only when it is set, so unset fields stay absent. */
export function setIfPresent<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | null | undefined): void {
  if (value !== null && value !== undefined) target[key] = value;
}

export function dateIfPresent<T extends object, K extends keyof T>(target: T, key: K, ms: number | null): void {
  if (ms !== null) (target as Record<K, Date>)[key] = new Date(ms);
}
