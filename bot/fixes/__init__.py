"""Prisma-shaped rewrites: the migrations that replace a risky one, and the plan between them (pure)."""
