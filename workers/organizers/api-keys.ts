/** Organizers and their API keys (stored only as SHA-256 hashes), with a scope, an optional expiry and revocation. */
import { and, asc, eq, isNull } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import { notFound } from "../../core/errors";
import { organizerApiKeys, organizers } from "../../core/db/schema";
import { sha256Hex } from "../platform/hex-digest";
import { type ApiKeyScope, isApiKeyScope } from "./scopes";

const KEY_PREFIX = "etk_";

/** A new random API key: 256 bits, so a plain SHA-256 is a safe way to store it. */
export function generateApiKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return KEY_PREFIX + btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** The stored form of an API key. */
export function hashApiKey(key: string): Promise<string> {
  return sha256Hex(key);
}

/** A key as the API lists it: never its secret. */
export interface ApiKeyView {
  id: string;
  name: string;
  scope: ApiKeyScope;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
}

const keyColumns = {
  id: organizerApiKeys.id,
  name: organizerApiKeys.label,
  scope: organizerApiKeys.scope,
  createdAt: organizerApiKeys.createdAt,
  expiresAt: organizerApiKeys.expiresAt,
  revokedAt: organizerApiKeys.revokedAt,
};

function keyView(row: { id: string; name: string; scope: string; createdAt: Date; expiresAt: Date | null; revokedAt: Date | null }): ApiKeyView {
  const scope = row.scope;
  // The column's check constraint holds it to our scopes.
  if (!isApiKeyScope(scope)) throw new Error(`api key ${row.id} has an unknown scope`);
  return { ...row, scope, createdAt: row.createdAt.toISOString(), expiresAt: row.expiresAt?.toISOString() ?? null, revokedAt: row.revokedAt?.toISOString() ?? null };
}

/** Creates an organizer with a first (admin) API key, returned in clear exactly once. */
export async function createOrganizer(db: Db, name: string): Promise<{ organizerId: string; apiKey: string }> {
  const apiKey = generateApiKey();
  const keyHash = await hashApiKey(apiKey);
  const organizerId = await db.transaction(async (tx) => {
    const [organizer] = await tx.insert(organizers).values({ name }).returning({ id: organizers.id });
    if (!organizer) throw new Error("organizer insert returned nothing");
    await tx.insert(organizerApiKeys).values({ organizerId: organizer.id, keyHash, label: "first key" });
    return organizer.id;
  });
  return { organizerId, apiKey };
}

/** Creates an API key for an organizer; the secret is returned in clear exactly once and never stored. */
export async function createApiKey(
  db: Db,
  organizerId: string,
  input: { name: string; scope: ApiKeyScope; expiresAt?: Date | undefined },
): Promise<{ key: ApiKeyView; apiKey: string }> {
  const apiKey = generateApiKey();
  const [row] = await db
    .insert(organizerApiKeys)
    .values({ organizerId, keyHash: await hashApiKey(apiKey), label: input.name, scope: input.scope, expiresAt: input.expiresAt ?? null })
    .returning(keyColumns);
  if (!row) throw new Error("api key insert returned nothing");
  return { key: keyView(row), apiKey };
}

/** Adds another admin key for an organizer (the dev seed's); the key is returned in clear exactly once. */
export async function addApiKey(db: Db, organizerId: string, label: string): Promise<{ id: string; apiKey: string }> {
  const { key, apiKey } = await createApiKey(db, organizerId, { name: label, scope: "admin" });
  return { id: key.id, apiKey };
}

/** An organizer's keys, oldest first, revoked and expired ones included. */
export async function listApiKeys(db: Db, organizerId: string): Promise<ApiKeyView[]> {
  const rows = await db.select(keyColumns).from(organizerApiKeys).where(eq(organizerApiKeys.organizerId, organizerId)).orderBy(asc(organizerApiKeys.createdAt), asc(organizerApiKeys.id));
  return rows.map(keyView);
}

/** One of an organizer's keys (404 when it is another organizer's or unknown). */
export async function getApiKey(db: Db, organizerId: string, keyId: string): Promise<ApiKeyView> {
  const [row] = await db.select(keyColumns).from(organizerApiKeys).where(and(eq(organizerApiKeys.id, keyId), eq(organizerApiKeys.organizerId, organizerId)));
  if (!row) throw notFound("That API key");
  return keyView(row);
}

/** Revokes one of an organizer's keys from `now` on; revoking again leaves the first revocation's time. */
export async function revokeApiKey(db: Db, organizerId: string, keyId: string, now = new Date()): Promise<ApiKeyView> {
  await db
    .update(organizerApiKeys)
    .set({ revokedAt: now })
    .where(and(eq(organizerApiKeys.id, keyId), eq(organizerApiKeys.organizerId, organizerId), isNull(organizerApiKeys.revokedAt)));
  return getApiKey(db, organizerId, keyId);
}

/** Who a presented key is: the key (id, name, scope) and its organizer. */
export interface ApiKeyHolder {
  key: { id: string; name: string; scope: ApiKeyScope };
  organizer: { id: string; name: string };
}

/** Why a presented key is refused. */
export type ApiKeyRefusal = "unknown" | "revoked" | "expired";

/** The holder of a presented API key at `now`, or why it is refused. */
export async function authenticateApiKey(db: Db, apiKey: string, now = new Date()): Promise<{ ok: true; holder: ApiKeyHolder } | { ok: false; reason: ApiKeyRefusal }> {
  if (!apiKey.startsWith(KEY_PREFIX) || apiKey.length > 128) return { ok: false, reason: "unknown" };
  const [row] = await db
    .select({ ...keyColumns, organizerId: organizers.id, organizerName: organizers.name })
    .from(organizerApiKeys)
    .innerJoin(organizers, eq(organizers.id, organizerApiKeys.organizerId))
    .where(eq(organizerApiKeys.keyHash, await hashApiKey(apiKey)));
  if (!row || !isApiKeyScope(row.scope)) return { ok: false, reason: "unknown" };
  if (row.revokedAt !== null && row.revokedAt <= now) return { ok: false, reason: "revoked" };
  if (row.expiresAt !== null && row.expiresAt <= now) return { ok: false, reason: "expired" };
  return { ok: true, holder: { key: { id: row.id, name: row.name, scope: row.scope }, organizer: { id: row.organizerId, name: row.organizerName } } };
}

/** The organizer a usable API key belongs to, or undefined for an unknown, revoked or expired key. */
export async function organizerForApiKey(db: Db, apiKey: string, now = new Date()): Promise<{ id: string; name: string } | undefined> {
  const result = await authenticateApiKey(db, apiKey, now);
  return result.ok ? result.holder.organizer : undefined;
}
