# Databricks notebook globals for R notebooks run by the local workspace.
#
# The executor starts one IRkernel per R notebook task and, before the first user cell, runs
# source("<this file>"). That defines in the global environment the dbutils functions a
# Databricks R notebook calls (dbutils.widgets.*, dbutils.notebook.*, dbutils.secrets.*,
# dbutils.fs.*) plus display() and displayHTML(). Everything is configured from the ORCH_*
# environment variables the executor sets:
#
#   ORCH_NOTEBOOK_PATH   the notebook's workspace path (relative notebook.run paths start there)
#   ORCH_WORKSPACE_ROOT  local folder of the workspace ("/Workspace/x" is <root>/x)
#   ORCH_DBFS_ROOT       local folder of DBFS ("dbfs:/x", "/dbfs/x" and, in dbutils.fs, "/x")
#   ORCH_CONTROL_DIR     per-run folder: exit.json and child results are written there
#   ORCH_PARAMS          JSON object of run parameters (they win over widget defaults)
#   ORCH_SECRETS         JSON {scope: {key: value}}
#
# Exit protocol: dbutils.notebook.exit(value) writes {"value": "<value>"} to
# $ORCH_CONTROL_DIR/exit.json (temporary file + rename) and signals a condition of class
# "notebook_exit" to stop the notebook; the executor sees the file and ends the run as SUCCESS.
#
# R's own file functions (readLines, read.csv, file.exists...) read "/dbfs/...", "/Volumes/..."
# and "/Workspace/..." paths through paths.R. Limitation: secrets are not redacted from R
# output. Base R and jsonlite only.

local({
  json_object <- function(variable) {
    text <- Sys.getenv(variable, "")
    if (!nzchar(trimws(text))) {
      return(list())
    }
    value <- jsonlite::fromJSON(text, simplifyVector = FALSE)
    if (length(value) > 0 && is.null(names(value))) {
      stop(variable, " must be a JSON object", call. = FALSE)
    }
    value
  }

  as_text <- function(value) {
    if (is.null(value)) {
      return("")
    }
    if (is.logical(value)) {
      return(paste(tolower(as.character(value)), collapse = ","))
    }
    paste(as.character(value), collapse = ",")
  }

  raise <- function(class, message) {
    stop(structure(
      class = c(class, "error", "condition"),
      list(message = message, call = NULL)
    ))
  }

  params <- lapply(json_object("ORCH_PARAMS"), as_text)
  secrets <- json_object("ORCH_SECRETS")
  widgets <- new.env(parent = emptyenv())

  has_prefix <- function(path, prefix) {
    identical(path, prefix) || startsWith(path, paste0(prefix, "/"))
  }

  # posixpath.normpath for an absolute path; NULL when ".." climbs above "/".
  normalize <- function(path) {
    parts <- strsplit(path, "/", fixed = TRUE)[[1]]
    out <- character(0)
    for (part in parts) {
      if (part == "" || part == ".") next
      if (part == "..") {
        if (length(out) == 0) {
          return(NULL)
        }
        out <- out[-length(out)]
      } else {
        out <- c(out, part)
      }
    }
    paste0("/", paste(out, collapse = "/"))
  }

  # ---------------------------------------------------------------- widgets

  define_widget <- function(name, kind, default, choices, label) {
    if (!is.character(name) || length(name) != 1 || !nzchar(name)) {
      raise("WidgetError", "A widget name must be a non-empty string")
    }
    assign(name, list(
      kind = kind, value = as_text(default), choices = as.character(choices), label = label
    ), envir = widgets)
    invisible(NULL)
  }

  check_choices <- function(name, choices) {
    if (length(choices) == 0) {
      raise("WidgetError", sprintf("Widget '%s' needs at least one choice", name))
    }
    as.character(unlist(choices))
  }

  widget_get <- function(name) {
    name <- as.character(name)
    if (!is.null(params[[name]])) {
      return(params[[name]])
    }
    if (exists(name, envir = widgets, inherits = FALSE)) {
      return(get(name, envir = widgets, inherits = FALSE)$value)
    }
    raise("InputWidgetNotDefined", sprintf(
      "com.databricks.dbutils_v1.InputWidgetNotDefined: No input widget named %s is defined",
      name
    ))
  }

  api <- list()

  api$dbutils.widgets.get <- widget_get

  api$dbutils.widgets.getArgument <- function(name, optional = NULL) {
    tryCatch(widget_get(name), InputWidgetNotDefined = function(e) optional)
  }

  api$dbutils.widgets.text <- function(name, defaultValue, label = NULL) {
    define_widget(name, "text", defaultValue, character(0), label)
  }

  api$dbutils.widgets.dropdown <- function(name, defaultValue, choices, label = NULL) {
    choices <- check_choices(name, choices)
    if (!(as_text(defaultValue) %in% choices)) {
      raise("WidgetError", sprintf(
        "Default value '%s' of dropdown widget '%s' is not one of the choices: %s",
        as_text(defaultValue), name, paste(choices, collapse = ", ")
      ))
    }
    define_widget(name, "dropdown", defaultValue, choices, label)
  }

  api$dbutils.widgets.combobox <- function(name, defaultValue, choices, label = NULL) {
    define_widget(name, "combobox", defaultValue, check_choices(name, choices), label)
  }

  api$dbutils.widgets.multiselect <- function(name, defaultValue, choices, label = NULL) {
    choices <- check_choices(name, choices)
    default <- as_text(defaultValue)
    if (!(default %in% choices) && !all(strsplit(default, ",", fixed = TRUE)[[1]] %in% choices)) {
      raise("WidgetError", sprintf(
        "Default value '%s' of multiselect widget '%s' is not among the choices: %s",
        default, name, paste(choices, collapse = ", ")
      ))
    }
    define_widget(name, "multiselect", default, choices, label)
  }

  api$dbutils.widgets.getAll <- function() {
    values <- lapply(mget(ls(widgets, all.names = TRUE), envir = widgets), function(w) w$value)
    for (name in names(params)) values[[name]] <- params[[name]]
    values
  }

  api$dbutils.widgets.remove <- function(name) {
    if (!exists(name, envir = widgets, inherits = FALSE)) {
      raise("InputWidgetNotDefined", sprintf(
        "com.databricks.dbutils_v1.InputWidgetNotDefined: No input widget named %s is defined",
        name
      ))
    }
    rm(list = name, envir = widgets)
    invisible(NULL)
  }

  api$dbutils.widgets.removeAll <- function() {
    rm(list = ls(widgets, all.names = TRUE), envir = widgets)
    invisible(NULL)
  }

  # ---------------------------------------------------------------- notebook

  control_dir <- function() {
    dir <- Sys.getenv("ORCH_CONTROL_DIR", "")
    if (!nzchar(dir)) {
      stop("ORCH_CONTROL_DIR is not set", call. = FALSE)
    }
    dir
  }

  write_json_atomic <- function(path, json) {
    tmp <- tempfile(pattern = paste0(".", basename(path), "."), tmpdir = dirname(path))
    con <- file(tmp, open = "wb")
    tryCatch(
      writeBin(charToRaw(enc2utf8(as.character(json))), con),
      finally = close(con)
    )
    if (!file.rename(tmp, path)) {
      unlink(tmp)
      stop("Could not write ", path, call. = FALSE)
    }
    invisible(path)
  }

  api$dbutils.notebook.exit <- function(value) {
    text <- as_text(value)
    json <- jsonlite::toJSON(list(value = jsonlite::unbox(text)), auto_unbox = TRUE)
    write_json_atomic(file.path(control_dir(), "exit.json"), json)
    raise("notebook_exit", paste0("Notebook exited: ", text))
  }

  resolve_notebook <- function(path, current) {
    path <- as.character(path)
    if (has_prefix(path, "/Workspace")) path <- substring(path, nchar("/Workspace") + 1)
    if (!startsWith(path, "/")) {
      if (has_prefix(current, "/Workspace")) current <- substring(current, nchar("/Workspace") + 1)
      base <- dirname(current)
      if (base %in% c("", ".")) base <- "/"
      path <- paste0(base, "/", path)
    }
    resolved <- normalize(path)
    if (is.null(resolved)) "/" else resolved
  }

  api$dbutils.notebook.run <- function(path, timeout_seconds = 0, arguments = list()) {
    target <- resolve_notebook(path, Sys.getenv("ORCH_NOTEBOOK_PATH", ""))
    arguments <- as.list(arguments)
    args_json <- if (length(arguments) == 0) {
      "{}"
    } else {
      if (is.null(names(arguments)) || any(!nzchar(names(arguments)))) {
        stop("arguments must be named", call. = FALSE)
      }
      as.character(jsonlite::toJSON(
        lapply(arguments, function(v) jsonlite::unbox(as_text(v))),
        auto_unbox = TRUE
      ))
    }
    dir <- control_dir()
    stem <- basename(tempfile(pattern = sprintf("child-%d-", Sys.getpid()), tmpdir = dir))
    result_file <- file.path(dir, paste0(stem, ".result.json"))
    started_file <- file.path(dir, paste0(stem, ".started.json"))
    timeout <- as.integer(if (is.null(timeout_seconds)) 0 else timeout_seconds)
    request <- sprintf('{"path": %s, "timeout": %d, "args": %s}',
                       jsonlite::toJSON(jsonlite::unbox(target)), timeout, args_json)
    # The run executing this notebook claims the request and writes the result.
    write_json_atomic(file.path(dir, paste0(stem, ".request.json")), request)
    on.exit(unlink(c(result_file, started_file)), add = TRUE)
    waited <- FALSE
    on.exit(if (!waited) write_json_atomic(file.path(dir, paste0(stem, ".cancel.json")), "{}"),
            add = TRUE)
    shown <- FALSE
    while (!file.exists(result_file)) {
      if (!shown && file.exists(started_file)) shown <- show_child_link(read_json(started_file))
      Sys.sleep(0.02)
    }
    waited <- TRUE
    result <- read_json(result_file)
    if (!shown) show_child_link(result)
    status <- if (is.null(result$status)) "FAILED" else as.character(result$status)
    if (identical(status, "SUCCESS")) {
      return(if (is.null(result$exit_value)) "" else as.character(result$exit_value))
    }
    # As on Databricks: the child's error and traceback are in its own run, not here.
    message <- if (!is.null(result$error)) {
      # a request that started no run (its notebook does not exist): the reason
      paste0("com.databricks.WorkflowException: ", result$error)
    } else if (identical(status, "TIMEDOUT")) {
      paste0("com.databricks.WorkflowException: com.databricks.NotebookExecutionException: ",
             "TIMEDOUT: Notebook run timed out")
    } else if (identical(status, "CANCELED")) {
      paste0("com.databricks.WorkflowException: com.databricks.NotebookExecutionException: ",
             "CANCELED: Run cancelled")
    } else {
      paste0("com.databricks.WorkflowException: com.databricks.NotebookExecutionException: ",
             "FAILED: Workload failed, see run output for details")
    }
    raise("WorkflowException", message)
  }

  read_json <- function(path) {
    value <- tryCatch(jsonlite::fromJSON(path, simplifyVector = FALSE), error = function(e) NULL)
    if (is.list(value)) value else list()
  }

  # The link Databricks shows in the calling cell: the child run's page, "Notebook job #<id>".
  show_child_link <- function(answer) {
    if (is.null(answer$run_id) || is.null(answer$run_page_url)) {
      return(FALSE)
    }
    link <- sprintf('<a href="%s">Notebook job #%s</a>',
                    html_escape(as.character(answer$run_page_url)),
                    format(answer$run_id, scientific = FALSE))
    if (have_irdisplay()) IRdisplay::display_html(link)
    TRUE
  }

  html_escape <- function(text) {
    text <- gsub("&", "&amp;", text, fixed = TRUE)
    text <- gsub("<", "&lt;", text, fixed = TRUE)
    text <- gsub(">", "&gt;", text, fixed = TRUE)
    text <- gsub('"', "&quot;", text, fixed = TRUE)
    gsub("'", "&#x27;", text, fixed = TRUE)
  }

  api$dbutils.notebook.getContext <- function() {
    path <- Sys.getenv("ORCH_NOTEBOOK_PATH", "")
    parts <- strsplit(path, "/", fixed = TRUE)[[1]]
    user <- if (length(parts) > 2 && parts[2] == "Users") parts[3] else NULL
    list(notebookPath = path, user = user)
  }

  # ---------------------------------------------------------------- secrets

  api$dbutils.secrets.get <- function(scope, key) {
    value <- secrets[[as.character(scope)]][[as.character(key)]]
    if (is.null(value)) {
      raise("SecretNotFound", sprintf(
        "Secret does not exist with scope: %s and key: %s", scope, key
      ))
    }
    as.character(value)
  }

  api$dbutils.secrets.getBytes <- function(scope, key) {
    charToRaw(enc2utf8(api$dbutils.secrets.get(scope, key)))
  }

  api$dbutils.secrets.list <- function(scope) {
    if (is.null(secrets[[as.character(scope)]])) {
      raise("SecretNotFound", sprintf("Scope %s does not exist!", scope))
    }
    lapply(sort(names(secrets[[scope]])), function(key) list(key = key))
  }

  api$dbutils.secrets.listScopes <- function() {
    lapply(sort(names(secrets)), function(name) list(name = name))
  }

  # ---------------------------------------------------------------- fs

  fs_resolve <- function(path) {
    path <- as.character(path)
    root_of <- function(variable) {
      root <- Sys.getenv(variable, "")
      if (!nzchar(root)) stop(variable, " is not set", call. = FALSE)
      sub("/+$", "", normalizePath(root, mustWork = FALSE))
    }
    inside <- function(variable, rest, uri_prefix) {
      norm <- normalize(paste0("/", rest))
      if (is.null(norm)) {
        raise("PermissionError", sprintf("Path escapes its root in the local workspace: %s", path))
      }
      root <- root_of(variable)
      list(local = if (norm == "/") root else paste0(root, norm),
           uri = if (norm == "/") uri_prefix else paste0(sub("/$", "", uri_prefix), norm))
    }
    if (startsWith(path, "dbfs:")) {
      return(inside("ORCH_DBFS_ROOT", substring(path, 6), "dbfs:/"))
    }
    if (startsWith(path, "file:")) {
      local <- normalize(sub("^//", "", substring(path, 6)))
      if (is.null(local)) local <- "/"
      mapped <- if (has_prefix(local, "/Workspace")) {
        inside("ORCH_WORKSPACE_ROOT", substring(local, 11), "file:/Workspace")$local
      } else if (has_prefix(local, "/dbfs")) {
        inside("ORCH_DBFS_ROOT", substring(local, 6), "dbfs:/")$local
      } else {
        local
      }
      return(list(local = mapped, uri = paste0("file:", local)))
    }
    if (grepl("^[A-Za-z][A-Za-z0-9+.-]*:", path)) {
      stop(sprintf("%s is not available in the local workspace; use dbfs:/, /Workspace/ or file:/",
                   path), call. = FALSE)
    }
    if (has_prefix(path, "/Workspace")) {
      return(inside("ORCH_WORKSPACE_ROOT", substring(path, 11), "file:/Workspace"))
    }
    if (has_prefix(path, "/dbfs")) {
      return(inside("ORCH_DBFS_ROOT", substring(path, 6), "dbfs:/"))
    }
    inside("ORCH_DBFS_ROOT", path, "dbfs:/")
  }

  not_found <- function(uri) {
    raise("FileNotFoundError", sprintf("java.io.FileNotFoundException: File %s does not exist.", uri))
  }

  api$dbutils.fs.ls <- function(dir) {
    target <- fs_resolve(dir)
    if (!file.exists(target$local)) not_found(target$uri)
    if (dir.exists(target$local)) {
      names <- sort(list.files(target$local, all.files = TRUE, no.. = TRUE))
      locals <- file.path(target$local, names)
      uris <- paste0(sub("/$", "", target$uri), "/", names)
    } else {
      names <- basename(target$local)
      locals <- target$local
      uris <- target$uri
    }
    info <- file.info(locals)
    is_dir <- info$isdir
    data.frame(
      path = ifelse(is_dir, paste0(uris, "/"), uris),
      name = ifelse(is_dir, paste0(names, "/"), names),
      size = ifelse(is_dir, 0, info$size),
      modificationTime = floor(as.numeric(info$mtime) * 1000),
      stringsAsFactors = FALSE,
      row.names = NULL
    )
  }

  api$dbutils.fs.mkdirs <- function(dir) {
    dir.create(fs_resolve(dir)$local, recursive = TRUE, showWarnings = FALSE)
    TRUE
  }

  api$dbutils.fs.put <- function(file, contents, overwrite = FALSE) {
    target <- fs_resolve(file)
    if (dir.exists(target$local)) stop(target$uri, " is a directory", call. = FALSE)
    if (file.exists(target$local) && !isTRUE(overwrite)) {
      raise("FileExistsError", sprintf(
        "java.io.FileAlreadyExistsException: File %s already exists.", target$uri
      ))
    }
    dir.create(dirname(target$local), recursive = TRUE, showWarnings = FALSE)
    bytes <- charToRaw(enc2utf8(as_text(contents)))
    con <- file(target$local, open = "wb")
    tryCatch(writeBin(bytes, con), finally = close(con))
    cat(sprintf("Wrote %d bytes.\n", length(bytes)))
    invisible(TRUE)
  }

  api$dbutils.fs.head <- function(file, maxBytes = 65536) {
    target <- fs_resolve(file)
    if (!file.exists(target$local) || dir.exists(target$local)) not_found(target$uri)
    con <- file(target$local, open = "rb")
    on.exit(close(con))
    bytes <- readBin(con, what = "raw", n = maxBytes)
    text <- rawToChar(bytes)
    Encoding(text) <- "UTF-8"
    text
  }

  api$dbutils.fs.rm <- function(dir, recurse = FALSE) {
    target <- fs_resolve(dir)
    if (!file.exists(target$local)) {
      return(FALSE)
    }
    if (dir.exists(target$local) && !isTRUE(recurse) &&
        length(list.files(target$local, all.files = TRUE, no.. = TRUE)) > 0) {
      stop(sprintf("Cannot remove %s: the directory is not empty. Use recurse = TRUE.",
                   target$uri), call. = FALSE)
    }
    unlink(target$local, recursive = TRUE) == 0
  }

  copy_or_move <- function(from, to, recurse, move) {
    source <- fs_resolve(from)
    dest <- fs_resolve(to)
    if (!file.exists(source$local)) not_found(source$uri)
    if (dir.exists(source$local)) {
      if (!isTRUE(recurse)) {
        stop(sprintf("%s is a directory. Use recurse = TRUE.", source$uri), call. = FALSE)
      }
      dir.create(dest$local, recursive = TRUE, showWarnings = FALSE)
      entries <- list.files(source$local, all.files = TRUE, no.. = TRUE, full.names = TRUE)
      ok <- all(file.copy(entries, dest$local, recursive = TRUE, overwrite = TRUE))
    } else {
      target <- dest$local
      if (dir.exists(target) || endsWith(as.character(to), "/")) {
        target <- file.path(target, basename(source$local))
      }
      dir.create(dirname(target), recursive = TRUE, showWarnings = FALSE)
      ok <- file.copy(source$local, target, overwrite = TRUE)
    }
    if (!ok) stop(sprintf("Could not copy %s to %s", source$uri, dest$uri), call. = FALSE)
    if (move) unlink(source$local, recursive = TRUE)
    TRUE
  }

  api$dbutils.fs.cp <- function(from, to, recurse = FALSE) copy_or_move(from, to, recurse, FALSE)
  api$dbutils.fs.mv <- function(from, to, recurse = FALSE) copy_or_move(from, to, recurse, TRUE)

  # ---------------------------------------------------------------- display

  have_irdisplay <- function() {
    isTRUE(getOption("jupyter.in_kernel")) && requireNamespace("IRdisplay", quietly = TRUE)
  }

  api$displayHTML <- function(html) {
    if (have_irdisplay()) {
      IRdisplay::display_html(paste(as.character(html), collapse = "\n"))
    } else {
      cat(html, sep = "\n")
    }
    invisible(NULL)
  }

  api$display <- function(x, ...) {
    if (!have_irdisplay()) {
      print(x)
    } else if (is.data.frame(x) && requireNamespace("repr", quietly = TRUE)) {
      old <- options(repr.matrix.max.rows = 1000, repr.matrix.max.cols = 200)
      on.exit(options(old))
      rows <- utils::head(x, 1000)
      IRdisplay::publish_mimebundle(list(
        "text/html" = paste(repr::repr_html(rows), collapse = "\n"),
        "text/plain" = paste(utils::capture.output(print(utils::head(rows, 20))), collapse = "\n")
      ))
    } else {
      IRdisplay::display(x)
    }
    invisible(NULL)
  }

  for (name in names(api)) assign(name, api[[name]], envir = globalenv())
})
