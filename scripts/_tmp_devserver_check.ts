import { execFileSync } from 'node:child_process';
import { Connection } from '@temporalio/client';
import { startDevServer, ensureSearchAttributes } from './dev-server';

async function run() {
  const t0 = Date.now();
  const server = await startDevServer({ cliPath: process.env.CLI ?? '/root/go/bin/temporal', dataDir: '/tmp/keeltest/data', port: 17233, uiPort: 18233 });
  console.log('ready in', Date.now() - t0, 'ms', server);
  console.log(execFileSync('/root/go/bin/temporal', ['operator', 'search-attribute', 'list', '--address', server.address]).toString().split('\n').filter((l) => /Keel/.test(l)).join('\n'));
  const ui = await fetch(server.uiUrl); console.log('UI status', ui.status);
  const conn = await Connection.connect({ address: server.address });
  console.log('ensure again ->', await ensureSearchAttributes(conn, 'default'));
  await conn.close();
  try { await startDevServer({ cliPath: '/root/go/bin/temporal', dataDir: '/tmp/keeltest/data2', port: 17233, uiPort: 18234 }); } catch (e) { console.log('second start refused:', (e as Error).message); }
  const t1 = Date.now(); await server.stop(); await server.stop(); console.log('stopped in', Date.now() - t1, 'ms');
  try { await startDevServer({ cliPath: '/root/go/bin/temporal', dataDir: '/tmp/keeltest/data3', port: 17243, uiPort: 18233 + 0 + 10, namespace: 'other' }).then(async (s) => { console.log('ns other ok'); console.log(execFileSync('/root/go/bin/temporal', ['operator', 'search-attribute', 'list', '--namespace', 'other', '--address', s.address]).toString().split('\n').filter((l) => /Keel/.test(l)).join('\n')); await s.stop(); }); } catch (e) { console.log('ns other failed', e); }
}
run().catch((err) => { console.error(err); process.exit(1); });
