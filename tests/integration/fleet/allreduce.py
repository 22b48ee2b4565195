"""A torch.distributed all_reduce across the nodes of a FastGPU gang job (CPU, gloo backend).

Uses only the environment FastGPU sets for the job: MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK
(init_method "env://"), plus FASTGPU_NODE_RANK/FASTGPU_NUM_NODES for the printout. Each rank contributes
rank + 1; every rank must see 1 + 2 + ... + WORLD_SIZE. Prints one line per rank and exits 0 on success.
"""
import datetime
import os
import sys

import torch
import torch.distributed as dist


def main() -> int:
    world = int(os.environ["WORLD_SIZE"])
    rank = int(os.environ["RANK"])
    dist.init_process_group("gloo", init_method="env://", timeout=datetime.timedelta(seconds=60))
    t = torch.tensor([float(rank + 1)])
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    want = world * (world + 1) / 2
    ok = t.item() == want
    print(f"rank {rank}/{world} node {os.environ.get('FASTGPU_NODE_RANK')}/{os.environ.get('FASTGPU_NUM_NODES')} "
          f"master {os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} all_reduce={t.item():g} "
          f"want={want:g} {'ok' if ok else 'WRONG'}", flush=True)
    dist.destroy_process_group()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
