/** Organizers and their API keys (stored only as SHA-256 hashes). */
import { and, eq, isNull } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import { organizerApiKeys, organizers } from "../../core/db/schema";
import { sha256Hex } from "../platform/hex-digest";

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

/** Creates an organizer with a first API key, returned in clear exactly once. */
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

/** Adds another API key for an organizer; the key is returned in clear exactly once. */
export async function addApiKey(db: Db, organizerId: string, label: string): Promise<{ id: string; apiKey: string }> {
  const apiKey = generateApiKey();
  const [row] = await db.insert(organizerApiKeys).values({ organizerId, keyHash: await hashApiKey(apiKey), label }).returning({ id: organizerApiKeys.id });
  if (!row) throw new Error("api key insert returned nothing");
  return { id: row.id, apiKey };
}

/** The organizer an API key belongs to, or undefined for an unknown or revoked key. */
export async function organizerForApiKey(db: Db, apiKey: string): Promise<{ id: string; name: string } | undefined> {
  if (!apiKey.startsWith(KEY_PREFIX) || apiKey.length > 128) return undefined;
  const [row] = await db
    .select({ id: organizers.id, name: organizers.name })
    .from(organizerApiKeys)
    .innerJoin(organizers, eq(organizers.id, organizerApiKeys.organizerId))
    .where(and(eq(organizerApiKeys.keyHash, await hashApiKey(apiKey)), isNull(organizerApiKeys.revokedAt)));
  return row;
}
