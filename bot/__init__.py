"""zdm: stops Prisma migrations from taking PostgreSQL production down."""
