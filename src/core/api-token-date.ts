// Seed 001 renders every date as `DD Mon YYYY - HH:mm` in UTC ("10 Oct 2015 - 12:12").
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const two = (n: number) => String(n).padStart(2, "0");

export function formatApiTokenDate(d: Date): string {
  return `${two(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} - ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}`;
}
