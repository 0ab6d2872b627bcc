/** What a failure says, for people: the message of the failure that explains it, and its type. */
import { ApplicationFailure } from '@temporalio/workflow';

export function errorMessage(err: unknown): string {
  let e: unknown = err;
  // Activity failures wrap the ApplicationFailure that says what went wrong.
  while (e instanceof Error && e.cause instanceof Error && !(e instanceof ApplicationFailure)) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

export function failureType(err: unknown): string | undefined {
  let e: unknown = err;
  while (e instanceof Error) {
    if (e instanceof ApplicationFailure && e.type) return e.type;
    e = e.cause;
  }
  return undefined;
}
