import { randomBytes } from "node:crypto";

const ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** `prefix_` and 24 alphanumerics, like Stripe's ids. */
export function newId(prefix: string): string {
  return `${prefix}_${randomToken()}`;
}

/** 24 random alphanumerics (ids, client secrets). */
export function randomToken(): string {
  let token = "";
  for (const byte of randomBytes(24)) token += ID_ALPHABET.charAt(byte % ID_ALPHABET.length);
  return token;
}

/** Stripe's timestamps: whole seconds since the epoch. */
export function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}
