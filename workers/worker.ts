/** Builds a Keel worker from its dependencies; used by workers/main.ts, the tests and the benchmark. */
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import { createEmailConnector, type EmailConnector } from '../activities/connectors/email';
import type { Config } from '../lib/config';
import { parseFaults } from '../lib/faults';
import { createPrisma, type Db } from '../lib/prisma';

export interface KeelWorkerDeps {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  prisma: Db;
  email: EmailConnector;
  /** A prebuilt workflow bundle (tests and the benchmark build it once); otherwise workflows/ is bundled at start. */
  workflowBundlePath?: string;
  operatorName?: string;
  planner?: ActivityDeps['planner'];
  options?: Partial<WorkerOptions>;
}

export async function createKeelWorker(deps: KeelWorkerDeps): Promise<Worker> {
  return Worker.create({
    connection: deps.connection,
    namespace: deps.namespace,
    taskQueue: deps.taskQueue,
    ...(deps.workflowBundlePath
      ? { workflowBundle: { codePath: deps.workflowBundlePath } }
      : { workflowsPath: require.resolve('../workflows') }),
    activities: createActivities({
      prisma: deps.prisma,
      email: deps.email,
      operatorName: deps.operatorName,
      planner: deps.planner,
    }),
    ...deps.options,
  });
}

/** Everything a worker process owns, built from configuration. */
export async function createWorkerFromConfig(config: Config) {
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const prisma = createPrisma(config.DATABASE_URL);
  const email = createEmailConnector({
    smtpUrl: config.SMTP_URL,
    from: config.KEEL_SMTP_FROM,
    outboxDir: config.KEEL_OUTBOX_DIR,
    prisma,
    faults: parseFaults(config.KEEL_FAULTS),
  });
  const worker = await createKeelWorker({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.KEEL_TASK_QUEUE,
    prisma,
    email,
    workflowBundlePath: config.KEEL_WORKFLOW_BUNDLE,
    operatorName: config.KEEL_OPERATOR_NAME,
  });
  const close = async () => {
    await email.close();
    await prisma.$disconnect();
    await connection.close();
  };
  return { worker, close };
}
