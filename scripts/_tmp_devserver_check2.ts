import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { startDevServer, ensureSearchAttributes } from './dev-server';

async function run() {
  let t = Date.now();
  const s = await startDevServer({ cliPath: '/root/go/bin/temporal', dataDir: '/tmp/keeltest/data3', port: 17243, uiPort: 18243, namespace: 'other' });
  console.log('other ns ready', Date.now() - t); t = Date.now();
  await s.stop(); console.log('stopped', Date.now() - t);
  // exits early: UI port taken by a plain listener
  const net = await import('node:net'); const blocker = net.createServer().listen(18253, '127.0.0.1');
  t = Date.now();
  try { await startDevServer({ cliPath: '/root/go/bin/temporal', dataDir: '/tmp/keeltest/d4', port: 17253, uiPort: 18253 }); console.log('UNEXPECTED start'); } catch (e) { console.log('ui-port clash ->', (e as Error).message.slice(0, 400), Date.now() - t); }
  blocker.close();
  // bare server without search attributes: ensureSearchAttributes must add them
  const bare = spawn('/root/go/bin/temporal', ['server', 'start-dev', '--port', '17263', '--ui-port', '18263', '--ip', '127.0.0.1', '--headless'], { stdio: 'ignore' });
  await sleep(4000);
  const conn = await Connection.connect({ address: '127.0.0.1:17263' });
  console.log('added on bare server ->', await ensureSearchAttributes(conn, 'default'));
  console.log('second call ->', await ensureSearchAttributes(conn, 'default'));
  await conn.close(); bare.kill('SIGTERM'); await new Promise((r) => bare.once('exit', r));
}
run().catch((err) => { console.error(err); process.exit(1); });
