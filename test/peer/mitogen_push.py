#!/usr/bin/python3
"""Mitogen's file transfer, for push_bench.sh: copies SRC to DST on the
benchmark's sshd as Ansible's mitogen strategy copies a file.

    /usr/bin/python3 test/peer/mitogen_push.py SRC DST

Reads PEER_SSH_* as ``eval "$(bash test/peer/sshd.sh start)"`` sets them
(see mitogen_bench.py's ssh_kwargs). The master serves SRC with
mitogen.service.FileService (registered, as Ansible's connection
multiplexer does); the far context pulls it with FileService.get, which
streams chunks under a 1 MiB acknowledged window, into DST. Mitogen checks
the size only: no hash, no temporary name.

Exits 1 when the far side says the copy is incomplete.
"""

import os
import sys


def fetch(master, path, dst):
    """Runs in the far context: FileService.get into dst."""
    import mitogen.service
    with open(dst, 'wb') as fp:
        ok, meta = mitogen.service.FileService.get(master, path, fp)
    return ok, meta['size']


if __name__ == '__main__':
    import mitogen.master
    import mitogen.service
    import mitogen.utils

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from mitogen_bench import ssh_kwargs, MAX_MESSAGE_SIZE

    src, dst = os.path.abspath(sys.argv[1]), sys.argv[2]
    broker = mitogen.master.Broker()
    router = mitogen.master.Router(broker, max_message_size=MAX_MESSAGE_SIZE)
    try:
        files = mitogen.service.FileService(router)
        pool = mitogen.service.Pool(router, services=[files], size=2)
        files.register(src)
        ctx = router.ssh(**ssh_kwargs())
        ok, size = ctx.call(fetch, router.myself(), src, dst)
        pool.stop()
        if not ok or size != os.path.getsize(src):
            sys.exit('mitogen_push.py: incomplete copy (%r, %r bytes)' % (ok, size))
    finally:
        broker.shutdown()
        broker.join()
