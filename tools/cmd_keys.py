"""`racer keys`: make ed25519 keys for signing bundles, and show a key's id.

`racer keys new NAME [--dir DIR]` writes `NAME.key` (private, mode 0600; keep it off the
car) and `NAME.pub` (copy it to the car: `racer models trust NAME.pub`). Bundles exported
with `racer export --sign NAME.key` then install on a car that trusts NAME.pub, and a car
with trusted keys refuses unsigned or wrongly signed bundles.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vehicle.models.signing import (
    SigningKey,
    load_public_key,
    load_signing_key,
    save_key_pair,
)

DEFAULT_KEY_DIR = Path("~/.config/openracer/keys")
"""Where `racer keys new` writes keys unless --dir is given."""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="racer keys", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("new", help="make a key pair NAME.key + NAME.pub")
    p.add_argument("name", help="key name (letters, digits, . _ - @ +)")
    p.add_argument(
        "--dir", default=str(DEFAULT_KEY_DIR), help=f"folder (default {DEFAULT_KEY_DIR})"
    )
    p.add_argument("--force", action="store_true", help="replace an existing key of that name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("show", help="print the id and public line of a .key or .pub file")
    p.add_argument("key")
    p.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)

    if args.action == "new":
        key = SigningKey.generate(args.name)
        key_path, pub_path = save_key_pair(
            key, Path(args.dir).expanduser(), args.name, force=args.force
        )
        info = {
            "key_id": key.public.key_id,
            "private_key": str(key_path),
            "public_key": str(pub_path),
        }
        if args.json:
            print(json.dumps(info, indent=2))
        else:
            print(f"key {info['key_id']}")
            print(f"  private: {key_path}  (sign with `racer export ... --sign {key_path}`)")
            print(f"  public:  {pub_path}  (on the car: `racer models trust {pub_path.name}`)")
        return 0

    path = Path(args.key)
    public = load_signing_key(path).public if path.suffix == ".key" else load_public_key(path)
    info = {
        "key_id": public.key_id,
        "comment": public.comment,
        "public_line": public.to_line().strip(),
    }
    print(
        json.dumps(info, indent=2) if args.json else f"{public.key_id}  {public.to_line().strip()}"
    )
    return 0
