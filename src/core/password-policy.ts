// The password policy shared by every service that sets a password: at least 8 and at most
// 256 characters (NIST SP 800-63B), and not one of the 10,000 most common passwords.
//
// The list is bundled (common-passwords.txt: SecLists' "10-million-password-list-top-10000",
// MIT, see common-passwords.LICENSE) rather than taken from an npm package: none of the
// packages that wrap such a list is actively maintained, and a plain text file is easy to audit
// or replace. Comparison is case-insensitive, so "Password1" counts as common too.
import { readFileSync } from "node:fs";
import { projectFile } from "../project-files.js";
import { invalidField } from "./errors.js";

export const minPasswordLength = 8;
export const maxPasswordLength = 256;

let common: Set<string> | undefined;

function commonPasswords(): Set<string> {
  common ??= new Set(
    readFileSync(projectFile("src", "core", "common-passwords.txt"), "utf8")
      .split(/\r?\n/)
      .map((line) => line.trim().toLowerCase())
      .filter((line) => line.length >= minPasswordLength),
  );
  return common;
}

/** True when the password is on the bundled list of common passwords. */
export function isCommonPassword(password: string): boolean {
  return commonPasswords().has(password.toLowerCase());
}

/**
 * Throws AuthError invalid_argument naming the rule the password breaks (WEAK_PASSWORD; a
 * password too long is INVALID_FIELD). `field` is the request field it came in.
 */
export function checkPassword(password: string, field = "password"): void {
  // Length in Unicode code points, so an emoji counts as one character.
  const length = [...password].length;
  if (length < minPasswordLength) throw invalidField(field, `password too short: at least ${minPasswordLength} characters required`, "WEAK_PASSWORD");
  if (length > maxPasswordLength) throw invalidField(field, `password too long: at most ${maxPasswordLength} characters allowed`);
  if (isCommonPassword(password)) throw invalidField(field, "password too common: it is on a list of frequently used passwords", "WEAK_PASSWORD");
}
