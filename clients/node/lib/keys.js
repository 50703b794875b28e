'use strict';
// CURVE keys in czmq's certificate files, as `zsaga keygen` writes them:
// NAME.key (public key and metadata), NAME.key_secret (both keys).
const fs = require('fs');

function read(path) {
  const found = {};
  for (const raw of fs.readFileSync(path, 'utf8').split('\n')) {
    const line = raw.trim();
    for (const k of ['public-key', 'secret-key'])
      if (line.startsWith(k) && line.includes('=')) found[k] = line.split('=').slice(1).join('=').trim().replace(/^"|"$/g, '');
  }
  return found;
}

function loadPair(secretPath) {
  const k = read(secretPath);
  if (!k['public-key'] || !k['secret-key']) throw new Error(`${secretPath}: not a key pair (want a NAME.key_secret file)`);
  return { publicKey: k['public-key'], secretKey: k['secret-key'] };
}

function loadPublic(path) {
  const k = read(path);
  if (!k['public-key']) throw new Error(`${path}: no public-key in it`);
  return k['public-key'];
}

/** Make a zeromq socket a CURVE client of zsagad (before connect). */
function curveClient(sock, key, serverKey, insecure) {
  if (insecure) return;
  if (!key || !serverKey) throw new Error('no key given: key and serverKey (or insecure for a plaintext test setup)');
  const pair = loadPair(key);
  sock.curveServerKey = loadPublic(serverKey);
  sock.curvePublicKey = pair.publicKey;
  sock.curveSecretKey = pair.secretKey;
}

module.exports = { loadPair, loadPublic, curveClient };
