/**
 * The failure converter used when payload encryption is on: a failure's
 * message and stack trace travel as an encoded payload (which the codec then
 * encrypts) instead of plain fields, since error messages can quote goal text.
 * Workflow-safe: the worker bundles it into the workflow sandbox.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
