"""The command line's exit codes: the same for every command, and documented in the README."""

EXIT_PUSHED = 0
EXIT_FAILED = 1          # a component failed for another reason
EXIT_BAD_CONFIG = 2      # the heads spec, schema or a setting is wrong: nothing ran
EXIT_DATA_REJECTED = 3   # the data broke the schema: the run stopped before Transform
EXIT_NOT_BLESSED = 4     # the model missed a threshold: nothing pushed
EXIT_BUSY = 5            # another run of the same pipeline (workdir) is in progress: nothing done
EXIT_INTERRUPTED = 130   # Ctrl-C (SIGINT) during a component, as shells report a process SIGINT stopped
