'use strict';

// Echo client for Autobahn's fuzzingserver: runs every case, then asks for
// the report. Usage: node echo-client.js URL AGENT [ws]

const impl = process.argv[4] === 'ws' ? require('ws') : require('../..');
const base = process.argv[2];
const agent = process.argv[3];
const options = {
  perMessageDeflate: true,
  ...(process.env.AUTOBAHN_DEFAULT_LIMITS ? {} : { maxFragments: 1 << 20 })
};

function open(path, onMessage) {
  return new Promise((resolve) => {
    const ws = new impl(`${base}${path}`, options);
    ws.on('message', (data, isBinary) => onMessage(ws, data, isBinary));
    ws.on('error', () => {});
    ws.on('close', () => resolve());
  });
}

async function main() {
  let count = 0;
  await open('/getCaseCount', (ws, data) => {
    count = +data.toString();
  });
  for (let i = 1; i <= count; i++) {
    await open(`/runCase?case=${i}&agent=${agent}`, (ws, data, isBinary) => {
      ws.send(data, { binary: isBinary });
    });
  }
  await open(`/updateReports?agent=${agent}`, () => {});
  console.log(`ran ${count} cases`);
}

main();
