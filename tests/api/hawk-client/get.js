'use strict';

// A GET signed with the hawk package, sent with fetch, and its answer's Server-Authorization
// verified. Reads one JSON object on stdin:
//   {"url": ..., "signedUrl": ... (default: url), "id": ..., "key": ...,
//    "headers": {...} (sent as well), "payload": "..." and "contentType": "..." (to hash),
//    "timestamp": seconds (default: now)}
// and prints {"status", "headers", "body", "verified", "verifyError"} as JSON.

const Hawk = require('hawk');

async function readStdin() {
    const chunks = [];
    for await (const chunk of process.stdin) {
        chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
}

async function main() {
    const input = JSON.parse(await readStdin());
    const credentials = { id: input.id, key: input.key, algorithm: 'sha256' };
    const options = { credentials };
    if (input.timestamp !== undefined) {
        options.timestamp = input.timestamp;
    }
    if (input.payload !== undefined) {
        options.payload = input.payload;
        options.contentType = input.contentType || '';
    }
    const { header, artifacts } = Hawk.client.header(input.signedUrl || input.url, 'GET', options);
    const response = await fetch(input.url, {
        headers: { ...(input.headers || {}), Authorization: header },
        redirect: 'manual'
    });
    const body = await response.text();
    const headers = Object.fromEntries(response.headers);
    let verified = false;
    let verifyError = null;
    try {
        Hawk.client.authenticate({ headers }, credentials, artifacts, { payload: body, required: true });
        verified = true;
    }
    catch (error) {
        verifyError = error.message;
    }
    process.stdout.write(JSON.stringify({ status: response.status, headers, body, verified, verifyError }));
}

main().catch((error) => {
    process.stderr.write(`${error.stack}\n`);
    process.exit(1);
});
