/** Keeps the Temporal SDK's own logging to warnings so test output shows what matters. */
import { DefaultLogger, Runtime } from '@temporalio/worker';

Runtime.install({ logger: new DefaultLogger('WARN') });
