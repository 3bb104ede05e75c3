// Types of compact-ticket.js for the TypeScript side (core/tickets/compact-token.ts re-exports them).
// Not served: static/.assetsignore leaves declaration files out of the assets.

/** Where a ticket admits to: a seat, or a general-admission section. */
export type CompactPlace = { section: string; row: string; seat: string } | { section: string; ga: true };

/** What a compact code says. */
export interface CompactTicket {
  ticketId: string;
  /** The event id's first 8 hex digits (see `isForEvent`). */
  eventIdPrefix: string;
  place: CompactPlace;
  expiresAt: Date;
  /** The first byte of SHA-256 of the signing key's kid. */
  keyId: number;
}

/** Why a code was refused: expired, or not ours (forged, tampered, garbled, unknown key). */
export type CompactFailure = "expired" | "bad_token";

export const BASE45: string;
export const VERSION: number;
export const EVENT_ID_PREFIX_BYTES: number;
export const SIGNATURE_BYTES: number;
export const FIXED_BYTES: number;
export const PLACE_SEPARATOR: string;
export const P256_ORDER: bigint;
export const P256_HALF_ORDER: bigint;
export function isCompactCode(text: string): boolean;
export function isForEvent(ticket: CompactTicket, eventId: string): boolean;
export function base45Decode(text: string): Uint8Array | undefined;
export function hex(bytes: Uint8Array): string;
export function parseCompactCode(code: string): { payload: Uint8Array; signature: Uint8Array; ticket: CompactTicket } | undefined;
export function keyIdOf(kid: string): Promise<number>;
export function verifyCompactCode(code: string, jwks: { keys?: readonly unknown[] }, now?: Date): Promise<{ ok: true; ticket: CompactTicket } | { ok: false; reason: CompactFailure }>;
