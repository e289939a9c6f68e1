// RFC 5893's Bidi Rule (src/core/bidi-rule.ts), which RFC 8265 applies to a new user name holding
// right-to-left characters: the Bidi_Class table it reads (Unicode 17.0), each of the rule's six
// conditions refused and met, the parts a login is judged in (between spaces, "@" and "."), and
// the refusal of a new login that breaks it (a login that is not new is never judged by it).
import assert from "node:assert/strict";
import { bidiClass, bidiConditionBroken, bidiRuleBroken } from "../../src/core/bidi-rule.js";
import { AuthError } from "../../src/core/errors.js";
import { parseLogin, parseNewLogin } from "../../src/core/login-name.js";

const bidiRefusal = (field: string) =>
  `${field} must follow the Bidi Rule of RFC 5893 in each part (between spaces, @ and dots) when it holds right-to-left characters: a part holding them starts with a right-to-left letter, ends with one or a digit, and holds neither left-to-right characters nor both Arabic-Indic and European digits; any other part starts with a letter and ends with a letter or digit; no part holds other white space`;

const show = (text: string) => [...text].map((c) => `U+${c.codePointAt(0)!.toString(16).padStart(4, "0")}`).join(" ");

describe("core: the Bidi Rule (RFC 5893)", () => {
  it("reads each code point's Bidi_Class from the Unicode 17.0 table, L for those it does not list", () => {
    const classes: Record<string, string[]> = {
      L: ["a", "Z", "\u00e9", "\u0915", "\u0966", "\u4e2d", "\u{10000}", "\u{20000}"],
      R: ["\u05d0", "\u05ea", "\u07c0", "\u0800", "\u{10800}", "\u{1e900}", "\u05eb" /* unassigned in the Hebrew block: R by default */],
      AL: ["\u0627", "\u0628", "\u06cc", "\u0710", "\u0780", "\ufb50", "\ufefc", "\u{1ee00}"],
      AN: ["\u0660", "\u0669", "\u066b", "\u0600", "\u{10e60}"],
      EN: ["0", "9", "\u00b2", "\u06f0", "\u06f9", "\u2070", "\uff10", "\u{1d7ce}"],
      ES: ["+", "-", "\u207a", "\uff0b"],
      CS: [",", ".", "/", ":", "\u00a0", "\u060c"],
      ET: ["#", "$", "%", "\u00a2", "\u20ac", "\u066a"],
      ON: ["!", "@", "\u00a7", "~", "\u2022", "\u{1f600}"],
      BN: ["\u0000", "\u00ad", "\u200b", "\ufeff", "\u{e0001}", "\ufdd0", "\u{10ffff}"],
      NSM: ["\u0300", "\u05b7", "\u064e", "\u0670", "\u094d", "\u{e0100}"],
      X: [" ", "\t", "\n", "\u2028", "\u2029", "\u3000", "\u202e", "\u2066", "\u2069"],
    };
    for (const [name, chars] of Object.entries(classes)) {
      for (const char of chars) assert.equal(bidiClass(char), name, show(char));
    }
  });

  // Each condition broken and met, the label judged as one of a bidi domain name.
  it("refuses and meets each of its six conditions (RFC 5893 section 2)", () => {
    const cases: Array<[string, 1 | 2 | 3 | 4 | 5 | 6 | undefined]> = [
      // 1. The first character is L, R or AL.
      ["1\u05d0", 1], // a digit first
      ["\u0661\u0628", 1], // an Arabic-Indic digit first
      ["!\u05d0", 1], // a neutral first
      ["\u05b7\u05d0", 1], // a mark first
      ["\u05d0\u05d1", undefined], // אב
      ["\u0627\u0644\u0639\u0631\u0628\u064a\u0629", undefined], // العربية
      ["abc", undefined],
      // 2. An RTL label holds only R, AL, AN, EN, ES, CS, ET, ON, BN, NSM.
      ["\u05d0a\u05d1", 2], // a Latin letter inside
      ["\u05d0 \u05d1", 2], // a space
      ["\u05d0\u0915\u05d1", 2], // a Devanagari letter
      ["\u05d0-\u05d1.\u05d2,\u05d3$\u05d4!\u05d5\u00ad\u05d6", undefined], // ES, CS, ET, ON, BN between letters
      ["\u05d0\u0628\u0661", undefined], // R, AL, AN together
      // 3. An RTL label ends with R, AL, EN or AN, then marks only.
      ["\u05d0!", 3], // a neutral last
      ["\u05d0-", 3],
      ["\u05d0!\u05b7", 3], // a mark after a neutral
      ["\u05d0\u05d11", undefined], // a digit last
      ["\u0628\u0661", undefined], // an Arabic-Indic digit last
      ["\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd", undefined], // שָׁלוֹם: Hebrew with points (NSM), one last
      ["\u05d0\u05b7\u05b8", undefined],
      // 4. An RTL label holds EN or AN, not both.
      ["\u05d01\u0661", 4],
      ["\u0628\u0661\u06f1", 4], // Extended Arabic-Indic digits are EN
      ["\u05d012", undefined],
      ["\u0628\u0661\u0662", undefined],
      ["\u0628\u06f1\u06f2", undefined],
      // 5. An LTR label holds only L, EN, ES, CS, ET, ON, BN, NSM.
      ["abc\u05d0", 5], // a Hebrew letter after Latin ones
      ["a\u0661", 5], // an Arabic-Indic digit
      ["a b", 5], // a space
      ["a1-b.c,d$e!f\u00ad\u0301g", undefined],
      // 6. An LTR label ends with L or EN, then marks only.
      ["abc!", 6],
      ["abc-", 6],
      ["abc1", undefined],
      ["abc\u0301", undefined], // a mark after a letter
    ];
    for (const [label, broken] of cases) assert.equal(bidiConditionBroken(label), broken, show(label));
  });

  // RFC 8265 section 3.5: a username with spaces is userparts, each judged on its own; RFC 5893
  // section 2: in a domain name with an RTL label, every label is judged, its LTR ones too.
  it("judges text holding a right-to-left character (R, AL or AN) in parts between spaces, @ and dots, every part; other text not at all", () => {
    // No R, AL or AN: no bidi domain name, the rule does not apply.
    for (const text of ["abc!", "1abc", "a b", "!", "1 !", "\u06f1\u06f2", "ada@example.com", ""]) assert.equal(bidiRuleBroken(text), undefined, show(text));
    const cases: Array<[string, 1 | 2 | 3 | 4 | 5 | 6 | undefined]> = [
      ["\u05d0\u05d1", undefined], // אב
      ["\u05d0 \u05d1", undefined], // א ב: two userparts
      ["\u05d0  \u05d1", undefined], // two spaces: the empty part between is not judged
      ["\u05d0@example.com", undefined], // an RTL local part, LTR domain labels
      ["\u05de\u05e8\u05d9\u05dd@example.co.il", undefined], // מרים@example.co.il
      ["abc.\u05d0", undefined],
      ["ada lovelace \u05d0\u05d1\u05d2", undefined],
      ["\u0645\u0631\u064a\u0645@\u0645\u062b\u0627\u0644.\u0627\u06cc\u0631\u0627\u0646", undefined], // مريم@مثال.ایران
      ["\u05d0\u05d112 \u0628\u0661", undefined], // EN in one part, AN in another
      // One part breaking a condition, whatever the others.
      ["abc\u05d0", 5], // Latin, then Hebrew: one part
      ["\u05d0abc", 2], // Hebrew, then Latin
      ["1\u05d0\u05d1", 1], // a digit first
      ["\u05d0\u05d1!", 3], // a neutral last
      ["\u05d01\u0661", 4], // European and Arabic-Indic digits in one part
      ["\u05d0 123", 1], // the LTR part 123 starts with EN
      ["\u05d0 abc!", 6], // the LTR part abc! ends with ON
      ["\u05d0@example-.com", 6], // a domain label ending with ES
      ["\u0661@\u0662.example", 1], // an RTL part starting with AN
      ["\u05d0 \u05d1!", 3],
      // Only U+0020, "@" and "." split: a hyphen, a comma, an ideographic space do not.
      ["\u05d0-abc", 2],
      ["\u05d0,abc", 2],
      ["\u05d0\u3000\u05d1", 2], // U+3000 is white space (WS) inside the part
      ["abc\u3000d \u05d0", 5],
    ];
    // Every case at once: a failure lists each text judged otherwise.
    assert.deepEqual(
      cases.map(([text]) => [text, bidiRuleBroken(text)]),
      cases,
    );
  });

  it("a new login holding right-to-left text must follow it: 400 INVALID_FIELD naming the field; any other login is not judged by it", () => {
    const refused = (raw: string, kind: "email" | "name") => {
      const field = kind === "email" ? "email" : "user";
      assert.throws(
        () => parseNewLogin(raw, kind),
        (e: unknown) =>
          e instanceof AuthError &&
          e.code === "invalid_argument" &&
          e.reason === "INVALID_FIELD" &&
          e.message === bidiRefusal(field) &&
          e.fieldViolations.length === 1 &&
          e.fieldViolations[0]?.field === field &&
          e.fieldViolations[0]?.description === bidiRefusal(field),
        show(raw),
      );
      // Not new: the same text is a login (an account created with it before logs in).
      parseLogin(raw, kind);
    };
    for (const name of ["abc\u05d0", "\u05d0abc", "1\u05d0\u05d1", "\u05d0\u05d1!", "\u05d01\u0661", "\u05d0 123", "\u05d0 abc!", "\u0661\u0662"]) refused(name, "name");
    // An email's local part and domain labels are parts too, each judged.
    for (const email of ["abc\u05d0@example.com", "\u05d0@example-.com", "\u0661@\u0662.example"]) refused(email, "email");
    // Judged in the form RFC 8265 judges: FULLWIDTH LATIN SMALL LETTER A is "a".
    refused("\u05d0\uff41", "name");
    // ... and IDEOGRAPHIC SPACE a space between two parts, as U+0020 is.
    parseNewLogin("\u05d0\u3000\u05d1", "name");
    for (const name of ["\u05d0 \u05d1", "abc.\u05d0", "\u05d0\u05d1", "\u05d0\u05d11", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", "\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd", "\u0628\u0661\u0662", "abc!", "1abc", "\u06f1\u06f2"]) parseNewLogin(name, "name");
    for (const email of ["\u05d0@example.com", "\u05de\u05e8\u05d9\u05dd@example.co.il", "ada@\u05d0.example", "ada.lovelace+1@example.com", "\u05d0@\u05d1.\u05d2", "\u0628\u0661@\u0645\u062b\u0627\u0644.\u0625\u062e\u062a\u0628\u0627\u0631"]) parseNewLogin(email, "email");
  });
});
