/**
 * The lobby's bot signals in Redis, per event: which accounts joined from each
 * device (as the client reports it), each Turnstile ephemeral id (the device
 * as Cloudflare saw it solve the challenge, which the client cannot rotate),
 * each address, and each address's burst of accounts created within one hour;
 * plus what each account brought, so its evidence can be weighed again later.
 *
 * A join reads its evidence first (`peek`, which writes nothing) and records
 * it only once the lobby shard has taken the join or refused the account, so
 * a join turned away for its timing leaves nothing behind (issue 13, finding
 * 4). Recording is one MULTI (each SADD with its SCARD), so exactly one join
 * sees a set go over its limit: that join has the set's earlier members
 * weighed again (`membersOverLimit`), since the signal now holds for them too.
 */
import type { Redis } from "@upstash/redis/cloudflare";
import { z } from "zod";
import { BURST_WINDOW_MS, CREATION_BURST_ACCOUNTS, type EvidenceLimits, type LobbyEvidence } from "../../core/waiting-room/bot-evidence";

/** The sets outlive any sale. */
const SIGNAL_TTL_SECONDS = 3 * 24 * 3600;
const HOUR_MS = 3_600_000;

/** What an account brought to its join. */
export interface JoinFacts {
  accountId: string;
  ip: string;
  device: string;
  deviceReported: boolean;
  ephemeralId: string | null;
  accountCreatedAt: number;
}

const factsSchema = z.object({
  accountId: z.string(),
  ip: z.string(),
  device: z.string(),
  deviceReported: z.boolean(),
  ephemeralId: z.string().nullable(),
  accountCreatedAt: z.number(),
});

type SetKind = "device" | "ephemeral" | "ip" | "burst";

/** A set the account is in, and what recording it did. */
interface Membership {
  kind: SetKind;
  key: string;
  added: boolean;
  count: number;
}

/** What recording a join found. */
export interface Recorded {
  facts: JoinFacts;
  evidence: LobbyEvidence;
  memberships: Membership[];
}

/** An event's lobby signals. */
export class LobbySignals {
  constructor(
    private readonly redis: Redis,
    private readonly eventId: string,
  ) {}

  private factsKey(): string {
    return `lobby:${this.eventId}:facts`;
  }

  /** The sets an account's facts put it in. */
  private setsOf(facts: JoinFacts, now: number): { kind: SetKind; key: string }[] {
    const prefix = `lobby:${this.eventId}`;
    const sets: { kind: SetKind; key: string }[] = [
      { kind: "device", key: `${prefix}:device:${facts.device}` },
      { kind: "ip", key: `${prefix}:ip:${facts.ip}` },
    ];
    if (facts.ephemeralId !== null) sets.push({ kind: "ephemeral", key: `${prefix}:eph:${facts.ephemeralId}` });
    if (now - facts.accountCreatedAt < BURST_WINDOW_MS) sets.push({ kind: "burst", key: `${prefix}:burst:${facts.ip}:${Math.floor(facts.accountCreatedAt / HOUR_MS)}` });
    return sets;
  }

  /**
   * The evidence a join's facts would make, counting this account, without
   * recording anything: the lobby shard weighs it and decides first, so a
   * join it turns away (lobby closed, sale over) leaves no trace here.
   */
  async peek(facts: JoinFacts, now: number): Promise<LobbyEvidence> {
    const sets = this.setsOf(facts, now);
    const pipeline = this.redis.pipeline();
    for (const set of sets) pipeline.sismember(set.key, facts.accountId).scard(set.key);
    const results = z.array(z.number()).parse(await pipeline.exec());
    const memberships = sets.map((set, i) => {
      const member = results[i * 2] === 1;
      return { ...set, added: !member, count: (results[i * 2 + 1] ?? 0) + (member ? 0 : 1) };
    });
    return evidenceOf(facts, memberships);
  }

  /** Records a join's facts (once the shard took the join, or refused the account) and returns the evidence they make, counting this account. */
  async record(facts: JoinFacts, now: number): Promise<Recorded> {
    const sets = this.setsOf(facts, now);
    const tx = this.redis.multi();
    for (const set of sets) tx.sadd(set.key, facts.accountId).scard(set.key).expire(set.key, SIGNAL_TTL_SECONDS);
    tx.hset(this.factsKey(), { [facts.accountId]: JSON.stringify(facts) }).expire(this.factsKey(), SIGNAL_TTL_SECONDS);
    const results = z.array(z.number()).parse(await tx.exec());
    const memberships = sets.map((set, i) => ({ ...set, added: results[i * 3] === 1, count: results[i * 3 + 1] ?? 0 }));
    return { facts, evidence: evidenceOf(facts, memberships), memberships };
  }

  /**
   * The earlier members of every set this join took over its limit, each
   * with its evidence as it stands now (its own sets counted afresh).
   */
  async membersOverLimit(recorded: Recorded, limits: EvidenceLimits, now: number): Promise<{ facts: JoinFacts; evidence: LobbyEvidence }[]> {
    const limitOf: Record<SetKind, number> = {
      device: limits.maxAccountsPerDevice,
      ephemeral: limits.maxAccountsPerDevice,
      ip: limits.maxAccountsPerIp,
      burst: CREATION_BURST_ACCOUNTS - 1,
    };
    const crossed = recorded.memberships.filter((set) => set.added && set.count === limitOf[set.kind] + 1);
    if (crossed.length === 0) return [];
    const members = new Set<string>();
    for (const set of crossed) for (const accountId of await this.redis.smembers(set.key)) if (accountId !== recorded.facts.accountId) members.add(accountId);
    if (members.size === 0) return [];
    const stored = await this.redis.hmget<Record<string, unknown>>(this.factsKey(), ...members);
    const known: JoinFacts[] = [];
    for (const value of Object.values(stored ?? {})) {
      const parsed = factsSchema.safeParse(typeof value === "string" ? JSON.parse(value) : value);
      if (parsed.success) known.push(parsed.data);
    }
    const pipeline = this.redis.pipeline();
    const setsOf = known.map((facts) => this.setsOf(facts, now));
    for (const sets of setsOf) for (const set of sets) pipeline.scard(set.key);
    const counts = z.array(z.number()).parse(known.length > 0 ? await pipeline.exec() : []);
    let at = 0;
    return known.map((facts, i) => {
      const memberships = (setsOf[i] ?? []).map((set) => ({ ...set, added: false, count: counts[at++] ?? 0 }));
      return { facts, evidence: evidenceOf(facts, memberships) };
    });
  }
}

function evidenceOf(facts: JoinFacts, memberships: Membership[]): LobbyEvidence {
  const count = (kind: SetKind) => memberships.find((m) => m.kind === kind)?.count ?? 0;
  return {
    ip: facts.ip,
    device: facts.device,
    deviceReported: facts.deviceReported,
    ephemeralId: facts.ephemeralId,
    accountCreatedAt: facts.accountCreatedAt,
    accountsOnDevice: count("device"),
    accountsOnEphemeralId: count("ephemeral"),
    accountsOnIp: count("ip"),
    accountsInCreationBurst: count("burst"),
  };
}
