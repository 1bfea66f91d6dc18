// Entry point; the command is FerAnnotate (FerAnnotate.swift), the work AnnotateJob.
FerAnnotate.main()
