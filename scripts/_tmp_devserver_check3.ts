import { startDevServer } from './dev-server';
async function run() {
  const t = Date.now();
  try { const s = await startDevServer({ cliPath: null, dataDir: '/tmp/keeltest/d5', port: 17273, uiPort: 18273 }); console.log('started?!', s.address); await s.stop(); }
  catch (e) { console.log('sdk-download failed as expected offline after', Date.now() - t, 'ms:', String((e as Error).message).slice(0, 300)); }
}
run().catch((err) => { console.error(err); process.exit(1); });
