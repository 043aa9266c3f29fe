"""`zdm deploy`: applies a root's pending Prisma migrations the way the careful manual process would.

Prisma's own bookkeeping (`_prisma_migrations`, its advisory lock) is kept exactly, so `prisma migrate status`,
`deploy` and `resolve` work before and after; every locking statement waits for its lock under a short
`lock_timeout` and retries, so production traffic never queues behind it.
"""
