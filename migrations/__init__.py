"""peewee-migrate migrations, installed as ``browserfarm_migrations``. Each file
declares the models it needs frozen, as they were then; none imports the app's models."""
