/**
 * What the lobby knows about an account that joins, and what it makes of it
 * (seed "Deep Dive 2": same IP, same device fingerprint, accounts created in
 * rapid succession). The Worker gathers the evidence (workers/waiting-room/
 * bot-signals.ts); the lobby shard weighs it against the event's limits as
 * the room last told it, so a changed policy applies to the next join.
 *
 * Penalties scale with the evidence:
 * - a shared address alone (a carrier NAT, a campus) costs nothing, nor does
 *   a new account alone, nor both together;
 * - some evidence (a burst of new accounts from one address) moves the
 *   account to the back half of its block;
 * - strong evidence (one device, as Turnstile or the client reports it,
 *   behind more accounts than the limit, or enough weaker signals together)
 *   moves it behind everyone, or keeps it out under the policy "refuse".
 */

/** Raw evidence about one account's join. */
export interface LobbyEvidence {
  ip: string;
  /** The device the client reports, or one derived from IP and user agent when it reports none. */
  device: string;
  /** True when the client reported the device id (a shared id is then strong evidence); false for the IP + user-agent stand-in. */
  deviceReported: boolean;
  /** Turnstile's ephemeral id of the device that solved the challenge (Enterprise), which the client cannot rotate; null when siteverify gives none. */
  ephemeralId: string | null;
  accountCreatedAt: number;
  /** Accounts at this event's lobby with this device, this ephemeral id, this address, and created within the same hour from this address (this one included). */
  accountsOnDevice: number;
  accountsOnEphemeralId: number;
  accountsOnIp: number;
  accountsInCreationBurst: number;
}

/** The event's limits, as the room last pushed them. */
export interface EvidenceLimits {
  botPolicy: "deprioritize" | "refuse";
  maxAccountsPerDevice: number;
  maxAccountsPerIp: number;
}

/** One piece of evidence that counted. */
export interface Signal {
  signal: "shared_turnstile_device" | "shared_device" | "shared_ip" | "creation_burst" | "new_account";
  weight: number;
  /** How many accounts shared it (for the shared and burst signals). */
  accounts?: number;
  limit?: number;
}

/** What the evidence amounts to. */
export interface Assessment {
  score: number;
  signals: Signal[];
  /** 0: none; 1: back half of its block; 2: behind everyone (or kept out under "refuse"). */
  level: 0 | 1 | 2;
}

/** An account younger than this is new. */
export const NEW_ACCOUNT_MS = 7 * 24 * 3_600_000;
/** This many accounts created within the same hour and joining from one address make a burst. */
export const CREATION_BURST_ACCOUNTS = 10;
/** Only accounts younger than this can be part of a creation burst. */
export const BURST_WINDOW_MS = 30 * 24 * 3_600_000;
/** Scores from which a penalty applies. */
const BACK_OF_BLOCK_SCORE = 3;
const BEHIND_EVERYONE_SCORE = 4;

/** Weighs the evidence against the limits, at `now`. */
export function assessEvidence(evidence: LobbyEvidence, limits: EvidenceLimits, now: number): Assessment {
  const signals: Signal[] = [];
  if (evidence.ephemeralId !== null && evidence.accountsOnEphemeralId > limits.maxAccountsPerDevice) {
    signals.push({ signal: "shared_turnstile_device", weight: 4, accounts: evidence.accountsOnEphemeralId, limit: limits.maxAccountsPerDevice });
  }
  if (evidence.accountsOnDevice > limits.maxAccountsPerDevice) {
    signals.push({ signal: "shared_device", weight: evidence.deviceReported ? 4 : 1, accounts: evidence.accountsOnDevice, limit: limits.maxAccountsPerDevice });
  }
  if (evidence.accountsInCreationBurst >= CREATION_BURST_ACCOUNTS) {
    signals.push({ signal: "creation_burst", weight: 2, accounts: evidence.accountsInCreationBurst, limit: CREATION_BURST_ACCOUNTS - 1 });
  }
  if (evidence.accountsOnIp > limits.maxAccountsPerIp) signals.push({ signal: "shared_ip", weight: 1, accounts: evidence.accountsOnIp, limit: limits.maxAccountsPerIp });
  if (now - evidence.accountCreatedAt < NEW_ACCOUNT_MS) signals.push({ signal: "new_account", weight: 1 });
  const score = signals.reduce((sum, s) => sum + s.weight, 0);
  const level = score >= BEHIND_EVERYONE_SCORE ? 2 : score >= BACK_OF_BLOCK_SCORE ? 1 : 0;
  return { score, signals, level };
}

/** The strongest signal of an assessment (its first: they are listed strongest first), as the flag's reason. */
export function flagReason(assessment: Assessment): string {
  return [...assessment.signals].sort((a, b) => b.weight - a.weight)[0]?.signal ?? "none";
}
