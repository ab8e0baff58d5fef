// Harmless demo plugin: a parent that starts two child processes, so Tether has a process
// tree to show and to clean up. Each worker prints a line every 5 s; nothing else happens.
const { fork } = require('child_process');

if (process.argv[2] === 'child') {
  const id = process.argv[3];
  console.log(`worker ${id} started (pid ${process.pid}, parent ${process.ppid})`);
  setInterval(() => console.log(`worker ${id} alive`), 5000);
} else {
  const count = Number(process.env.WORKER_COUNT || 2);
  console.log(`workers parent started (pid ${process.pid}), forking ${count} children`);
  const kids = [];
  for (let i = 1; i <= count; i++) kids.push(fork(__filename, ['child', String(i)]));
  const stop = (sig) => {
    console.log(`workers parent got ${sig}, stopping children`);
    for (const k of kids) k.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  setInterval(() => {}, 1 << 30); // keep the parent alive
}
