/**
 * The tool registry: every tool a plan may name, what it needs, how risky it
 * is, and which activity runs it. Pure data, shared by workflow and activities.
 */

export type ToolRisk = 'read' | 'internal' | 'external';

export interface ToolSpec {
  name: string;
  description: string;
  /** Activity that runs the tool (a key of the activities object). */
  activity: StepActivityName;
  requiredInputs: string[];
  /** Inputs that must reference an earlier step's output. */
  refInputs: string[];
  risk: ToolRisk;
  /** External effects that cannot be undone wait for a person first. */
  irreversible: boolean;
  /** Activity that undoes a committed run of this tool, if one exists. */
  compensation?: CompensationActivityName;
  /** Activity option preset. */
  preset: 'model' | 'db' | 'connector';
  estimatedCostUsd: number;
}

export type StepActivityName = 'recallContext' | 'draftEmail' | 'sendEmail' | 'summarizeText' | 'recordOutcome';
export type CompensationActivityName = 'discardArtifact' | 'voidOutcome';

export const TOOLS: Readonly<Record<string, ToolSpec>> = {
  'memory.recall': {
    name: 'memory.recall',
    description: 'Gather what Keel knows that is relevant to the goal',
    activity: 'recallContext',
    requiredInputs: ['query'],
    refInputs: [],
    risk: 'read',
    irreversible: false,
    preset: 'db',
    estimatedCostUsd: 0,
  },
  'email.draft': {
    name: 'email.draft',
    description: 'Write an email draft and store it as an artifact',
    activity: 'draftEmail',
    requiredInputs: ['to', 'purpose'],
    refInputs: ['context'],
    risk: 'internal',
    irreversible: false,
    compensation: 'discardArtifact',
    preset: 'model',
    estimatedCostUsd: 0.02,
  },
  'email.send': {
    name: 'email.send',
    description: 'Send a drafted email over SMTP',
    activity: 'sendEmail',
    requiredInputs: ['to', 'draft'],
    refInputs: ['draft'],
    risk: 'external',
    irreversible: true,
    preset: 'connector',
    estimatedCostUsd: 0,
  },
  'text.summarize': {
    name: 'text.summarize',
    description: 'Summarize text or an earlier step output',
    activity: 'summarizeText',
    requiredInputs: ['source'],
    refInputs: [],
    risk: 'internal',
    irreversible: false,
    compensation: 'discardArtifact',
    preset: 'model',
    estimatedCostUsd: 0.01,
  },
  'outcome.record': {
    name: 'outcome.record',
    description: 'Record the outcome of the goal in the canonical store',
    activity: 'recordOutcome',
    requiredInputs: ['summary'],
    refInputs: [],
    risk: 'internal',
    irreversible: false,
    compensation: 'voidOutcome',
    preset: 'db',
    estimatedCostUsd: 0,
  },
};
