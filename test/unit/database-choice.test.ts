/** db/resolve.ts: which database Keel uses, by the rules in the README's Embedded database section. */
import { createServer, type Server } from 'node:net';
import { chooseDatabase } from '../../db/resolve';

let listening: Server;
let openPort: number;
let closedPort: number;

async function listen(): Promise<Server> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function portOf(server: Server): number {
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('no port');
  return address.port;
}

beforeAll(async () => {
  listening = await listen();
  openPort = portOf(listening);
  const released = await listen();
  closedPort = portOf(released);
  await new Promise<void>((resolve) => released.close(() => resolve()));
});

afterAll(() => new Promise<void>((resolve) => listening.close(() => resolve())));

const at = (port: number) => `postgresql://postgres@127.0.0.1:${port}/keel`;

test('KEEL_DATABASE=embedded wins over DATABASE_URL', async () => {
  const choice = await chooseDatabase({ KEEL_DATABASE: 'embedded', DATABASE_URL: at(openPort), KEEL_PGLITE_DIR: '/x' });
  expect(choice).toEqual({ kind: 'embedded', dataDir: '/x', port: 0, reason: 'KEEL_DATABASE=embedded' });
});

test('DATABASE_URL names the server, answering or not', async () => {
  const choice = await chooseDatabase({ DATABASE_URL: at(closedPort) });
  expect(choice).toEqual({ kind: 'server', url: at(closedPort), reason: 'DATABASE_URL' });
});

test('without DATABASE_URL: the default address if something answers there', async () => {
  const choice = await chooseDatabase({ KEEL_DEFAULT_DATABASE_URL: at(openPort) });
  expect(choice).toEqual({ kind: 'server', url: at(openPort), reason: `answers on 127.0.0.1:${openPort}` });
});

test('without DATABASE_URL and nothing on the default address: embedded, in .keel/pglite by default', async () => {
  const choice = await chooseDatabase({ KEEL_DEFAULT_DATABASE_URL: at(closedPort), DATABASE_URL: ' ' });
  expect(choice).toEqual({
    kind: 'embedded',
    dataDir: '.keel/pglite',
    port: 0,
    reason: `nothing answers on 127.0.0.1:${closedPort}`,
  });
});

test('KEEL_DATABASE=server never falls back', async () => {
  const choice = await chooseDatabase({ KEEL_DATABASE: 'server', KEEL_DEFAULT_DATABASE_URL: at(closedPort) });
  expect(choice).toEqual({ kind: 'server', url: at(closedPort), reason: 'KEEL_DATABASE=server' });
});

test('a bad setting is refused, naming it', async () => {
  await expect(chooseDatabase({ KEEL_DATABASE: 'sqlite' })).rejects.toThrow(/KEEL_DATABASE/);
});
