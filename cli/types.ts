/**
 * The answers of the HTTP API the CLI reads (shared/API.md), as much of each
 * as it uses. Written from the contract rather than imported from api/: the
 * CLI may talk to an API of another version, so every field it does not need
 * stays unknown and optional ones stay optional.
 */

export interface Cost {
  usd: number;
  inputTokens?: number;
  outputTokens?: number;
}

export interface GoalSummary {
  goalId: string;
  workflowId?: string;
  title: string;
  kind?: string | null;
  status: string;
  cost?: Cost;
  createdAt: string;
  updatedAt?: string;
}

export interface PlanStep {
  id: string;
  tool: string;
  title: string;
  status: string;
  requiresApproval?: boolean;
  dependsOn?: string[];
  output?: Record<string, unknown>;
  error?: unknown;
}

export interface Approval {
  approvalId: string;
  goalId: string;
  stepId: string;
  title: string;
  summary: string;
  rationale?: string;
  proposed?: Record<string, unknown>;
  status: string;
  escalated?: boolean;
  createdAt: string;
  expiresAt?: string;
  decidedAt?: string;
  decision?: string;
  actor?: string;
  comment?: string;
  /** Exactly what the operator is shown (tool, risk, cost so far, provenance), and its hash, which a decision may name. */
  shown?: { tool?: string; risk?: string; costSoFarUsd?: number; [k: string]: unknown };
  shownHash?: string;
  decidedHash?: string;
  channel?: string;
  /** The fields a person changed when approving. */
  edits?: Record<string, unknown>;
}

export interface Goal extends GoalSummary {
  plan: { version: number; steps: PlanStep[] };
  approvals: Approval[];
  outcome?: unknown;
  error?: unknown;
}

export interface StartAnswer {
  goalId: string;
  workflowId: string;
  status: string;
}

export interface DecisionAnswer {
  approvalId: string;
  status: string;
}

export interface ExplainAction {
  planVersion: number;
  stepId: string;
  what: string;
  why?: string | null;
  status: string;
  inputs?: Record<string, unknown> | null;
  output?: Record<string, unknown>;
  model?: string;
  promptHash?: string;
  memoryUsed?: string[];
  /** The memories used with their text (canonical facts such as `contact:…` by id only). */
  memory?: { id: string; text?: string }[];
  prompt?: unknown;
  approvals?: Approval[];
  sideEffects?: { kind: string; status: string; idempotencyKey: string; attempts?: number; result?: unknown }[];
  cost?: { usd: number };
}

export interface Explanation {
  goalId: string;
  title: string;
  status: string;
  plans?: { type: string; actor?: string; at: string; planVersion?: number; [k: string]: unknown }[];
  actions: ExplainAction[];
  cost?: Cost;
}

export interface PlanVersion {
  version: number;
  status: string;
  at: string;
  generatedBy?: string;
  model?: string;
  rationale?: string;
  problems?: string[];
  steps: { id: string; tool: string; title: string; dependsOn?: string[] }[];
  diff?: { added: string[]; removed: string[]; changed: { id: string; fields: string[] }[] };
  replannedBecause?: { cause: string; stepId: string; tool: string; note: string; actor?: string };
}

export interface PlanHistory {
  goalId: string;
  versions: PlanVersion[];
  churn?: number;
}

export interface MemoryHit {
  id: string;
  text: string;
  score: number;
  similarity?: number;
  recency?: number;
  kind: string;
  subject?: string | null;
  source?: string;
  occurredAt?: string | null;
}

export interface MemorySearch {
  results: MemoryHit[];
  buried?: (MemoryHit & { reason?: string })[];
  note?: string;
}
