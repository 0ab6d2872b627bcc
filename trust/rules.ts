/**
 * Trust that grows, pure: which audience an approval reaches, and the rule
 * the operator's own unedited approvals suggest for it ("auto-approve
 * email.send to ada@example.com"). A rule names one tool and one exact set of
 * recipients, so it never covers a person the operator has not approved
 * sending to, or a step of another kind.
 */
import { stepRecipients } from '../policy/approvals';

/** The audience of a step: its recipients, lower case, sorted, joined by `, `; empty when it names none. */
export function audienceOf(tool: string, inputs: Record<string, unknown> | undefined): string {
  const recipients = stepRecipients({ tool, inputs: (inputs ?? {}) as Record<string, never> });
  return [...recipients].sort().join(', ');
}

/** How a rule reads to a person. */
export function ruleText(rule: { tool: string; audience: string }): string {
  return `auto-approve ${rule.tool} to ${rule.audience}`;
}

/** The rule's id: one per tool and audience, the same in every process. */
export function ruleId(tool: string, audience: string): string {
  let h = 0x811c9dc5;
  for (const ch of `${tool}\u0000${audience}`) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `trust-${tool.replace(/[^a-z0-9]+/gi, '-')}-${h.toString(16).padStart(8, '0')}`;
}

export const TRUST_RULE_STATUSES = ['suggested', 'accepted', 'dismissed', 'revoked'] as const;
export type TrustRuleStatus = (typeof TRUST_RULE_STATUSES)[number];
