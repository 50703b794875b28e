"""CURVE keys in czmq's certificate files, as `zsaga keygen` writes them:
NAME.key (public key and metadata) and NAME.key_secret (both keys)."""
from typing import Optional, Tuple


def _read(path: str) -> dict:
    found = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            for k in ("public-key", "secret-key"):
                if line.startswith(k) and "=" in line:
                    found[k] = line.split("=", 1)[1].strip().strip('"').encode()
    return found


def load_pair(secret_path: str) -> Tuple[bytes, bytes]:
    """(public, secret) z85 keys of NAME.key_secret."""
    k = _read(secret_path)
    if "public-key" not in k or "secret-key" not in k:
        raise ValueError(f"{secret_path}: not a key pair (want a NAME.key_secret file)")
    return k["public-key"], k["secret-key"]


def load_public(path: str) -> bytes:
    """The z85 public key of NAME.key (or of a NAME.key_secret)."""
    k = _read(path)
    if "public-key" not in k:
        raise ValueError(f"{path}: no public-key in it")
    return k["public-key"]


def curve_client(sock, key: Optional[str], server_key: Optional[str], insecure: bool) -> None:
    """Make a zmq socket a CURVE client of zsagad (before connect)."""
    if insecure:
        return
    if not key or not server_key:
        raise ValueError("no key given: key and server_key (or insecure for a plaintext test setup)")
    import zmq

    pub, sec = load_pair(key)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, pub)
    sock.setsockopt(zmq.CURVE_SECRETKEY, sec)
    sock.setsockopt(zmq.CURVE_SERVERKEY, load_public(server_key))
