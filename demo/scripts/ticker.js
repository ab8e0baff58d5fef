// Harmless demo plugin: prints a heartbeat every second until stopped.
let n = 0;
console.log(`ticker started (pid ${process.pid})`);
setInterval(() => console.log(`tick ${++n} ${new Date().toISOString()}`), 1000);
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { console.log(`ticker got ${sig}, bye`); process.exit(0); });
