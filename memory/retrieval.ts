/**
 * How retrieval ranks memories. Every weight lives in one config object; the
 * defaults are documented in the README ("Memory and retrieval").
 *
 *   score = w.similarity · similarity
 *         + w.recency    · recency          (0.5 ^ (age / half-life of the memory's kind); 1 when the kind does not decay)
 *         + w.importance · importance       (0..1, given when remembered)
 *         + w.human      · [written or edited by a person]
 *         + w.feedback   · feedback         (-1..1, moved by approvals of actions that cited the memory)
 *
 * Decay is a visible re-ranking step: items that would have made the cut
 * without decay but did not with it are returned separately with the reason.
 */
import type { MemoryKind } from './types';

export interface RetrievalConfig {
  weights: { similarity: number; recency: number; importance: number; human: number; feedback: number };
  /** Half-life of each kind in days; null means the kind does not fade (a stated preference stays true). */
  halfLifeDays: Record<MemoryKind, number | null>;
  /** The store returns max(k · candidateFactor, minCandidates) by similarity; they are re-ranked by score. */
  candidateFactor: number;
  minCandidates: number;
  /** How approvals move the feedback of memories cited by the approved or rejected action. */
  feedback: { approved: number; rejected: number; min: number; max: number };
  /** At most this many items pushed below the cut by decay are reported. */
  buriedLimit: number;
}

export const DEFAULT_RETRIEVAL: RetrievalConfig = {
  weights: { similarity: 1, recency: 0.3, importance: 0.2, human: 0.15, feedback: 0.15 },
  halfLifeDays: { episodic: 30, semantic: null, summary: 180, artifact: 90 },
  candidateFactor: 4,
  minCandidates: 40,
  feedback: { approved: 0.25, rejected: -0.35, min: -1, max: 1 },
  buriedLimit: 5,
};

/** Merges a partial config over the defaults (weights and half-lives field by field). */
export function retrievalConfig(partial: DeepPartial<RetrievalConfig> = {}): RetrievalConfig {
  return {
    ...DEFAULT_RETRIEVAL,
    ...partial,
    weights: { ...DEFAULT_RETRIEVAL.weights, ...partial.weights },
    halfLifeDays: { ...DEFAULT_RETRIEVAL.halfLifeDays, ...partial.halfLifeDays } as RetrievalConfig['halfLifeDays'],
    feedback: { ...DEFAULT_RETRIEVAL.feedback, ...partial.feedback },
  };
}

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? Partial<T[K]> : T[K] };

const DAY_MS = 24 * 60 * 60 * 1000;

export interface Scorable {
  kind: MemoryKind;
  similarity: number;
  occurredAt: Date;
  importance: number;
  humanEdited: boolean;
  source: string;
  feedback: number;
}

export interface Scored {
  score: number;
  /** The score this item would have with no decay. */
  undecayedScore: number;
  recency: number;
  ageDays: number;
}

export function recencyOf(
  kind: MemoryKind,
  occurredAt: Date,
  now: Date,
  config: RetrievalConfig,
): { recency: number; ageDays: number } {
  const ageDays = Math.max(0, (now.getTime() - occurredAt.getTime()) / DAY_MS);
  const halfLife = config.halfLifeDays[kind];
  return { ageDays, recency: halfLife === null ? 1 : Math.pow(0.5, ageDays / halfLife) };
}

export function scoreMemory(item: Scorable, now: Date, config: RetrievalConfig): Scored {
  const w = config.weights;
  const { recency, ageDays } = recencyOf(item.kind, item.occurredAt, now, config);
  const human = item.humanEdited || item.source === 'human' ? 1 : 0;
  const rest =
    w.similarity * item.similarity + w.importance * item.importance + w.human * human + w.feedback * item.feedback;
  return { score: rest + w.recency * recency, undecayedScore: rest + w.recency, recency, ageDays };
}

/** Why decay moved an item below the cut, in words a person can check. */
export function decayReason(kind: MemoryKind, s: Scored, config: RetrievalConfig): string {
  const halfLife = config.halfLifeDays[kind];
  return (
    `recency decay: ${kind} memory is ${s.ageDays.toFixed(0)} days old (half-life ${halfLife} days), ` +
    `recency ${s.recency.toFixed(3)}; score ${s.score.toFixed(3)}, ${s.undecayedScore.toFixed(3)} without decay`
  );
}

/** The new feedback value after an approval outcome, clamped. */
export function nextFeedback(current: number, outcome: 'approved' | 'rejected', config: RetrievalConfig): number {
  const delta = outcome === 'approved' ? config.feedback.approved : config.feedback.rejected;
  return Math.min(config.feedback.max, Math.max(config.feedback.min, current + delta));
}
