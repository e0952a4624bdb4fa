from lstm_textgen.cli import console_main

console_main()
