"""LoRA training: photo checks, the detached trainer script and the job protocol.

Modules (import the one you need; this package imports nothing heavy, so the UI and the
command line stay quick to start):

- `photos`      per-photo checks and face crops
- `train_lora`  the trainer script, `python -m engine.training.train_lora --job DIR`
- `jobs`        job folders, status files, the queue, `submit` / `cancel` / `reconcile`
- `watch`       a watchdog watcher calling back on status changes
- `cli`         `python -m engine train|jobs|job|cancel`
"""
