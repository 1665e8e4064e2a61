"""In file mode a running process follows `siyu rotate-key` without a restart."""

import time

from cryptography.fernet import Fernet

from siyu.core import crypto
from siyu.core.keys import encryption_keys_file, new_fernet_key


def test_a_running_process_picks_up_a_rotated_key_file(settings, tmp_path):
    old, new = new_fernet_key(), new_fernet_key()
    settings.SIYU_HOME = tmp_path
    settings.SIYU_ENCRYPTION_KEYS_FROM_ENV = False
    path = encryption_keys_file(tmp_path)
    path.write_text(old + "\n")
    token = crypto.encrypt("13812345678")
    assert Fernet(old.encode()).decrypt(token.encode()) == b"13812345678"

    time.sleep(0.01)  # a distinct mtime
    path.write_text(f"{new}\n{old}\n")  # what rotate-key writes
    fresh = crypto.encrypt("13812345678")
    assert Fernet(new.encode()).decrypt(fresh.encode()) == b"13812345678"
    assert crypto.decrypt(token) == "13812345678"  # old values still read
