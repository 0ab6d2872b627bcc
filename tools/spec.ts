/**
 * What a tool is, as pure data the workflow sandbox can import: zod schemas
 * for its inputs and output, its risk, the activity-option preset, its
 * compensation, the failures retrying cannot fix, and what an operator is
 * shown (and may edit) when it waits for approval. Each tool's spec lives in
 * `tools/<tool>/spec.ts`, beside its implementation in `tools/<tool>/activity.ts`.
 */
import { z } from 'zod';
import type { StepOutput } from '../shared/plan';
import { once } from '../shared/once';

export type ToolRisk = 'read' | 'internal' | 'external';
export type ToolPreset = 'model' | 'db' | 'connector';
export type CompensationActivityName = 'discardArtifact' | 'voidOutcome' | 'deleteSlackMessage';

/**
 * What a step hands to the steps after it: small JSON; large texts stay in
 * PostgreSQL as artifacts and travel by id (`ref`) with a short `preview`.
 */
export const stepOutputSchema = once('tools/spec#stepOutputSchema', () =>
  z.looseObject({
    ref: z.string().min(1).optional(),
    preview: z.string().optional(),
  }),
);

/** An earlier step's output that must point at an artifact. */
export const artifactOutputSchema = once('tools/spec#artifactOutputSchema', () =>
  stepOutputSchema.extend({ ref: z.string().min(1) }),
);

/** The artifact an approval shows, as the approval activity loads it. */
export interface ArtifactView {
  id: string;
  title: string;
  content: string;
  metadata: Record<string, unknown>;
}

/** What the operator sees for a step that waits for them, and which fields they may change. */
export interface ApprovalSpec<I> {
  /** The input naming the artifact under review (an earlier step's output with a `ref`), if any. */
  artifactInput?: string;
  /** A one-line summary and the concrete proposed action, from the resolved inputs and that artifact. */
  describe(inputs: I, artifact: ArtifactView | undefined): { summary: string; proposed: Record<string, unknown> };
  /** The fields an operator may edit, as a schema; without it the step can only be approved or rejected. */
  edits?: z.ZodType<Record<string, string>>;
  /** The new version of the artifact an approved edit makes. */
  applyEdits?(
    artifact: ArtifactView,
    edits: Record<string, string>,
  ): { title: string; content: string; metadata: Record<string, unknown> };
  /**
   * The inputs an approved edit makes when no artifact holds what was edited
   * (a message given as text): the workflow runs the step with them.
   */
  applyEditsToInputs?(inputs: I, edits: Record<string, string>): I;
}

export interface ToolSpec<
  Name extends string = string,
  Activity extends string = string,
  I extends z.ZodObject = z.ZodObject,
  O extends z.ZodType<StepOutput> = z.ZodType<StepOutput>,
> {
  name: Name;
  description: string;
  /** The activity type that runs the tool; a stable name recorded in workflow histories. */
  activity: Activity;
  /** The inputs the activity receives, with step references already resolved to outputs. */
  input: I;
  output: O;
  /** Inputs that must reference an earlier step (in a plan: `{fromStep: id}`). */
  refInputs: readonly (keyof z.infer<I> & string)[];
  risk: ToolRisk;
  /** External effects that cannot be undone wait for a person first. */
  irreversible: boolean;
  /** Activity that undoes a committed run of this tool, if one exists. */
  compensation?: CompensationActivityName;
  preset: ToolPreset;
  estimatedCostUsd: number;
  /** Failure types the tool raises that retrying cannot fix. */
  errors: readonly string[];
  /**
   * Inputs that name who the effect reaches (an email's `to`). A model's plan
   * may only name people the goal names or the operator's contacts: an
   * address found only in outside text cannot become a recipient.
   */
  recipientInputs?: readonly string[];
  /**
   * The connector whose rate limit the tool's every run takes a slot from
   * (`email`, `slack`, `webhook`; the limits are the operator's policy,
   * KEEL_POLICY `rateLimits`, counted in PostgreSQL across workers).
   */
  rateLimit?: string;
  /**
   * The input holding a duration (`3d`) the workflow waits, as a durable
   * timer, before it runs the activity (followup.wait).
   */
  waitFor?: string;
  /** The tool writes to Keel's memory (what later goals recall), so outside content must not reach it unreviewed. */
  writesMemory?: boolean;
  /**
   * The model call the tool makes when a model is configured: its tier, the
   * most output tokens it asks for (what a budget reserves), and whether it
   * may drop to the small tier when the goal's budget cannot cover the large one.
   * `cacheForMs` is how long the output cache may serve the same request's
   * answer again (models/cache.ts; KEEL_MODEL_CACHE_FRESH overrides it; 0: never cached).
   */
  model?: { tier: 'small' | 'large'; maxTokens: number; downgrade: boolean; cacheForMs?: number };
  approval?: ApprovalSpec<z.infer<I>>;
}

/** Declares a tool; the identity function that keeps every literal type of the spec. */
export function defineTool<
  Name extends string,
  Activity extends string,
  I extends z.ZodObject,
  O extends z.ZodType<StepOutput>,
>(spec: ToolSpec<Name, Activity, I, O>): ToolSpec<Name, Activity, I, O> {
  return spec;
}

/** The shape of a tool's inputs as a plan sees it: each field, whether it is required, whether it must be a reference. */
export function inputFields(spec: ToolSpec): { name: string; required: boolean; ref: boolean; schema: z.ZodType }[] {
  return Object.entries(spec.input.shape).map(([name, schema]) => ({
    name,
    required: !(schema as z.ZodType).safeParse(undefined).success,
    ref: (spec.refInputs as readonly string[]).includes(name),
    schema: schema as z.ZodType,
  }));
}

/** The first problem zod found, as `field: message`, for failures that name what was wrong. */
export function describeIssues(error: z.ZodError, prefix = ''): string {
  return error.issues
    .map((i) => `${[prefix, ...i.path.map(String)].filter(Boolean).join('.') || 'input'}: ${i.message}`)
    .join('; ');
}

/**
 * What an operator is shown for a held step of this tool: its spec's summary
 * and proposed action for the inputs (checked against the spec), or a plain
 * line for a tool that does not describe itself. `artifact` is the one the
 * spec's `artifactInput` names, loaded by the caller.
 */
export function describeApproval(
  spec: ToolSpec,
  inputs: Record<string, unknown>,
  artifact: ArtifactView | undefined,
  title: string,
): { ok: true; summary: string; proposed: Record<string, unknown> } | { ok: false; problem: string } {
  if (!spec.approval) return { ok: true, summary: `${title} (${spec.name})`, proposed: inputs };
  const parsed = spec.input.safeParse(inputs);
  if (!parsed.success) return { ok: false, problem: describeIssues(parsed.error) };
  return { ok: true, ...spec.approval.describe(parsed.data, artifact) };
}
