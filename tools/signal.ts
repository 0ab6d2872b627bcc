/** The running activity's cancellation signal, for model and HTTP calls; none outside an activity (a script, a test). */
import { Context } from '@temporalio/activity';

export function activitySignal(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}
