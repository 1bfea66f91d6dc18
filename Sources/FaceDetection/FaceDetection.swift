// BlazeFace and the TFLite reader live here.
