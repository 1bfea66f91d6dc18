// Entry point: `fer-annotate serve ...` is the web app (ServeCommand.swift); anything else is the annotator,
// FerAnnotate (FerAnnotate.swift), whose work is AnnotateJob. A file named "serve" is still reachable as ./serve.
if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "serve" {
    await ServeCommand.main(arguments: Array(CommandLine.arguments.dropFirst(2)))
} else {
    FerAnnotate.main()
}
