/**
 * The plan schema shared by the planner activity, the workflow and the API.
 * Plain JSON only: it crosses the workflow sandbox boundary.
 */

/** A step input: a literal, or the output of an earlier step. */
export type StepInputValue = string | number | boolean | null | { fromStep: string };

export interface PlanStep {
  id: string;
  tool: string;
  title: string;
  rationale: string;
  inputs: Record<string, StepInputValue>;
  dependsOn: string[];
}

export interface ProposedPlan {
  steps: PlanStep[];
  rationale: string;
  /** Who produced the plan, e.g. `offline-planner` or a model name. */
  generatedBy: string;
  model: string;
  promptHash: string;
  costUsd: number;
  inputTokens: number;
  outputTokens: number;
  /** Addresses in the plan that are already the operator's contacts (the planGoal activity looks them up). */
  knownRecipients?: string[];
  /** How the model's prompt was fitted to its context window, and what it left out. */
  prompt?: PromptFit;
}

/** One working-set item left out of a prompt to fit the context window. */
export interface DroppedItem {
  id: string;
  /** What the item's line would have cost. */
  tokens: number;
}

/** What fitting a prompt did (models/prompt.ts fitPrompt), recorded so an explanation can say what the model did not see. */
export interface PromptFit {
  /** The tier's context window. */
  contextTokens: number;
  /** Held back for the answer (the call's `maxTokens`). */
  answerTokens: number;
  /** The fitted prompt's size (OpenAI's chat count). */
  promptTokens: number;
  /** Items kept, in the order given. */
  kept: string[];
  /** Items left out, least useful first. */
  dropped: DroppedItem[];
}

export const STEP_STATUSES = [
  'pending',
  'awaiting_approval',
  'running',
  'completed',
  'failed',
  'skipped',
  'compensated',
  'cancelled',
] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];

/** A validated step as the workflow runs it: the plan's step plus what the policy decided about it. */
export interface PlannedStep extends PlanStep {
  requiresApproval: boolean;
  /** Why it waits for a person (policy/approvals.ts), shown with its approval. */
  approvalReasons?: string[];
}

/** What a step activity hands back: small JSON; large texts travel as artifact ids. */
export interface StepOutput {
  /** Artifact id holding the full text, when the step produced one. */
  ref?: string;
  /** At most a few hundred characters, for people reading state. */
  preview?: string;
  [key: string]: unknown;
}

export interface StepResult {
  output: StepOutput;
  costUsd: number;
  inputTokens: number;
  outputTokens: number;
  model?: string;
  promptHash?: string;
  memoryIds?: string[];
  /** A model step's prompt fitting: what it left out to fit the tier's context window. */
  prompt?: PromptFit;
}

export function isStepRef(v: StepInputValue): v is { fromStep: string } {
  return typeof v === 'object' && v !== null && typeof (v as { fromStep?: unknown }).fromStep === 'string';
}

/**
 * The model call of a model plan: the large tier, at most 1500 output tokens
 * (what a budget reserves for it); the same request built from the same
 * memories is answered from the output cache for 10 minutes.
 */
export const PLAN_MODEL = { tier: 'large', maxTokens: 1500, downgrade: false, cacheForMs: 10 * 60_000 } as const;
