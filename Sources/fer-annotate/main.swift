// Entry point; the command is FerAnnotate (FerAnnotate.swift), the work TranscodeJob.
FerAnnotate.main()
