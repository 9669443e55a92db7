"""The process and the machine it runs on: hardware, the Keras backend, interrupts, Slurm jobs and start-up noise."""
